"""The DingTalk sandbox refuses what DingTalk refuses, in DingTalk's words, and its faults aim."""

import time

import pytest
import requests

from backend import defaults
from sandbox.server import Sandbox, SandboxSettings
from sandbox.state import FORM_COMPONENTS
from tests.integration.conftest import APP_KEY, APP_SECRET, PROCESS_CODE, faults

FORM = [{"name": "申请编号", "value": "A20261123-K7Q2M9"}, {"name": "公司名称", "value": "示例"}]


@pytest.fixture
def token(sandbox) -> str:
    body = {"appKey": APP_KEY, "appSecret": APP_SECRET}
    answer = requests.post(f"{sandbox.url}/v1.0/oauth2/accessToken", json=body, timeout=5)
    return str(answer.json()["accessToken"])


def start(sandbox, token: str, **body: object) -> requests.Response:
    """StartProcessInstance as the wire carries it; ``body`` overrides a valid request."""
    request = {
        "processCode": PROCESS_CODE,
        "originatorUserId": "manager01",
        "deptId": -1,
        "formComponentValues": FORM,
    } | body
    return requests.post(
        f"{sandbox.url}/v1.0/workflow/processInstances",
        json={k: v for k, v in request.items() if v is not None},
        headers={"x-acs-dingtalk-access-token": token},
        timeout=5,
    )


def refusal(answer: requests.Response) -> tuple[int, str]:
    body = answer.json()
    assert set(body) == {"code", "message", "requestid"}  # DingTalk's new-API error shape
    return answer.status_code, body["code"]


def test_the_default_form_has_the_components_dingpass_fills_by_default():
    assert FORM_COMPONENTS == tuple(name for name, _ in defaults.FORM_FIELDS)


def test_a_start_without_a_department_and_without_approvers_is_refused(sandbox, token):
    answer = start(sandbox, token, deptId=None)
    assert refusal(answer) == (400, "processInstanceInvalidParameter")
    assert sandbox.state.instances == {}


def test_a_start_with_its_own_approvers_needs_no_department(sandbox, token):
    approvers = [{"actionType": "NONE", "userIds": ["manager02"]}]
    assert start(sandbox, token, deptId=None, approvers=approvers).status_code == 200


def test_a_component_the_form_lacks_is_refused_by_name(sandbox, token):
    answer = start(sandbox, token, formComponentValues=[*FORM, {"name": "颜色", "value": "红"}])
    assert refusal(answer) == (400, "formConverterError")
    assert answer.json()["message"] == "表单数据校验失败，失败控件：颜色"


def test_a_rate_limit_aimed_at_one_api_spares_the_others(sandbox, token):
    faults(sandbox, rate_limit=1, rate_limit_api="start")
    requests.get(f"{sandbox.url}/v1.0/workflow/processInstances?processInstanceId=x", timeout=5)
    assert refusal(start(sandbox, token)) == (403, "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi")
    assert start(sandbox, token).status_code == 200
    assert sandbox.state.answers("get") == [400] and sandbox.state.answers("start") == [403, 200]


def test_an_html_error_is_a_page_not_json(sandbox, token):
    faults(sandbox, html_error=1, html_error_status=429)
    answer = start(sandbox, token)
    assert answer.status_code == 429 and answer.headers["Content-Type"].startswith("text/html")


def test_a_misspelt_fault_is_refused_not_ignored(sandbox):
    answer = requests.post(f"{sandbox.url}/sandbox/faults", json={"rate_limt": 1}, timeout=5)
    assert answer.status_code == 400 and "no fault rate_limt" in answer.json()["message"]


QPS_CODE = "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"


class StoppedClock:
    """The sandbox's clock, stopped mid-second: a test's calls fall in one window."""

    def __init__(self) -> None:
        self.now = int(time.time()) + 0.5

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def stopped(sandbox) -> StoppedClock:
    clock = StoppedClock()
    sandbox.state.clock = clock
    return clock


def get(sandbox, token: str) -> requests.Response:
    """GetProcessInstance (a new API) of an instance the sandbox does not have."""
    return requests.get(
        f"{sandbox.url}/v1.0/workflow/processInstances",
        params={"processInstanceId": "sbx-none"},
        headers={"x-acs-dingtalk-access-token": token},
        timeout=5,
    )


def failed_list(sandbox, token: str) -> requests.Response:
    """The failed-callback list (an old API: errors are HTTP 200 with an errcode)."""
    url = f"{sandbox.url}/call_back/get_call_back_failed_result"
    return requests.get(url, params={"access_token": token}, timeout=5)


def test_the_21st_call_of_a_new_api_in_a_second_is_refused_with_403(sandbox, token, stopped):
    faults(sandbox, qps_limit=20)
    assert {get(sandbox, token).status_code for _ in range(20)} == {400}  # no such instance
    assert refusal(get(sandbox, token)) == (403, QPS_CODE)
    assert sandbox.state.throttled() == {"get": 1}
    assert sandbox.state.counts()["get", 403] == 1


def test_the_21st_call_of_an_old_api_in_a_second_is_refused_with_90018(sandbox, token, stopped):
    faults(sandbox, qps_limit=20)
    assert {failed_list(sandbox, token).json()["errcode"] for _ in range(20)} == {0}
    answer = failed_list(sandbox, token)
    assert answer.status_code == 200 and answer.json()["errcode"] == 90018
    assert sandbox.state.throttled() == {"failed": 1}


def test_each_api_has_its_own_qps_budget(sandbox, token, stopped):
    faults(sandbox, qps_limit=20)
    for _ in range(20):
        get(sandbox, token)
    assert start(sandbox, token).status_code == 200
    assert sandbox.state.throttled() == {}


def test_the_next_second_has_a_new_qps_budget(sandbox, token, stopped):
    faults(sandbox, qps_limit=20)
    statuses = [get(sandbox, token).status_code for _ in range(21)]
    stopped.now += 1
    assert statuses[-1] == 403 and get(sandbox, token).status_code == 400


def test_there_is_no_qps_limit_by_default(sandbox, token, stopped):
    assert {get(sandbox, token).status_code for _ in range(30)} == {400}
    assert sandbox.state.throttled() == {}


def test_the_token_call_is_limited_per_app_key_in_its_body():
    settings = SandboxSettings(APP_KEY, APP_SECRET, PROCESS_CODE, qps_limit=1)
    server = Sandbox(settings).start()
    server.state.clock = StoppedClock()
    url = f"{server.url}/v1.0/oauth2/accessToken"
    asked = [
        {"appKey": "another-app", "appSecret": "x"},
        *[{"appKey": APP_KEY, "appSecret": APP_SECRET}] * 2,
    ]
    answers = [requests.post(url, json=body, timeout=5) for body in asked]
    server.stop()
    assert [a.status_code for a in answers] == [400, 200, 403]
    assert answers[2].json()["code"] == QPS_CODE
