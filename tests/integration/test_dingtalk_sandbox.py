"""The DingTalk sandbox refuses what DingTalk refuses, in DingTalk's words, and its faults aim."""

import pytest
import requests

from backend import defaults
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
