"""The DingTalk sandbox's forms, comments and work notifications: what the official SDK (or,
for the old work-notification API, plain HTTP) meets, refusals and all."""

import socket
import time
from urllib.parse import urlsplit

import pytest
import requests
from alibabacloud_dingtalk.workflow_1_0 import models as wf
from alibabacloud_dingtalk.workflow_1_0.client import Client
from alibabacloud_tea_openapi import models as open_api
from alibabacloud_tea_util import models as util
from Tea.exceptions import TeaException

from sandbox.delivery import CallbackTarget
from sandbox.forms import CLOUD_REQUEST_FORM
from sandbox.server import Sandbox, SandboxSettings
from sandbox.state import AGENT_ID, FORM_COMPONENTS
from tests.integration.conftest import APP_KEY, APP_SECRET, PROCESS_CODE, faults

CLOUD = CLOUD_REQUEST_FORM.process_code
VALUES = {
    "实例名称": "build-01",
    "实例规格": "ecs.g7.large",
    "可用区": "cn-hangzhou-i",
    "镜像": "aliyun_3_x64_20G_alibase_20240819.vhd",
    "系统盘(GiB)": "40",
    "用途": "CI 构建机\n第二行",
}
TEXT = {"msgtype": "text", "text": {"content": "云资源已开通: build-01"}}
ATTACHMENT = wf.AddProcessInstanceCommentRequestFileAttachments(
    file_id="B1oQi", file_name="说明.pdf", file_size="1024", file_type="pdf", space_id="123"
)


@pytest.fixture
def token(sandbox) -> str:
    body = {"appKey": APP_KEY, "appSecret": APP_SECRET}
    answer = requests.post(f"{sandbox.url}/v1.0/oauth2/accessToken", json=body, timeout=5)
    return str(answer.json()["accessToken"])


@pytest.fixture
def workflow(sandbox) -> Client:
    """The official SDK's workflow client, pointed at the sandbox."""
    return Client(open_api.Config(protocol="http", endpoint=urlsplit(sandbox.url).netloc))


@pytest.fixture
def unheard():
    """A sandbox pushing events to a port nobody listens on: each push attempt is recorded."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    target = CallbackTarget(f"http://127.0.0.1:{port}/callback", "t", "a" * 43, APP_KEY)
    settings = SandboxSettings(
        APP_KEY, APP_SECRET, PROCESS_CODE, callback=target, retry_scale=0.01, stream=False
    )
    server = Sandbox(settings).start()
    yield server
    server.stop()


def console_start(sandbox, originator: str = "zhangsan01", **values: str) -> requests.Response:
    """Start a cloud resource request in the console as ``originator``, as JSON."""
    return requests.post(
        f"{sandbox.url}/console/start/{CLOUD}",
        json={"originatorUserId": originator, "values": VALUES | values},
        headers={"Accept": "application/json"},
        timeout=5,
    )


def started(sandbox) -> str:
    answer = console_start(sandbox)
    answer.raise_for_status()
    return str(answer.json()["instanceId"])


def get_instance(workflow: Client, token: str, instance_id: str) -> dict:
    """GetProcessInstance through the SDK; the result as the wire carried it."""
    request = wf.GetProcessInstanceRequest(process_instance_id=instance_id)
    headers = wf.GetProcessInstanceHeaders(x_acs_dingtalk_access_token=token)
    answer = workflow.get_process_instance_with_options(request, headers, util.RuntimeOptions())
    return answer.body.to_map()["result"]


def comment(workflow: Client, token: str, **fields: object):
    """AddProcessInstanceComment through the SDK; ``fields`` override a valid request."""
    request = wf.AddProcessInstanceCommentRequest(
        **({"text": "已开通", "comment_user_id": "sandbox-approver"} | fields)
    )
    headers = wf.AddProcessInstanceCommentHeaders(x_acs_dingtalk_access_token=token)
    return workflow.add_process_instance_comment_with_options(
        request, headers, util.RuntimeOptions()
    )


def schema(workflow: Client, token: str, process_code: str | None):
    request = wf.QuerySchemaByProcessCodeRequest(process_code=process_code)
    headers = wf.QuerySchemaByProcessCodeHeaders(x_acs_dingtalk_access_token=token)
    return workflow.query_schema_by_process_code_with_options(
        request, headers, util.RuntimeOptions()
    )


def refused(call, *args: object, **kwargs: object) -> tuple[int, str]:
    """The HTTP status and DingTalk code of the exception the SDK raises for ``call``."""
    with pytest.raises(TeaException) as raised:
        call(*args, **kwargs)
    return raised.value.data["statusCode"], raised.value.code


def notify(sandbox, token: str, **body: object) -> dict:
    """asyncsend_v2 as JSON; ``body`` overrides a valid request (None leaves a field out)."""
    request = {"agent_id": AGENT_ID, "userid_list": "zhangsan01", "msg": TEXT} | body
    answer = requests.post(
        f"{sandbox.url}/topapi/message/corpconversation/asyncsend_v2",
        params={"access_token": token},
        json={k: v for k, v in request.items() if v is not None},
        timeout=5,
    )
    assert answer.status_code == 200  # the old API answers errors with 200 and an errcode
    return dict(answer.json())


def notifications(sandbox) -> list[dict]:
    return list(
        requests.get(f"{sandbox.url}/sandbox/notifications", timeout=5).json()["notifications"]
    )


# GetProcessInstance


def test_a_console_start_reads_back_with_ids_and_component_types(sandbox, workflow, token):
    result = get_instance(workflow, token, started(sandbox))
    values = {v["name"]: v for v in result["formComponentValues"]}
    assert values["实例规格"] == {
        "id": "DDSelectField-TYPE",
        "name": "实例规格",
        "value": "ecs.g7.large",
        "componentType": "DDSelectField",
    }
    assert [v["id"] for v in result["formComponentValues"]] == [
        c.id for c in CLOUD_REQUEST_FORM.components
    ]
    assert values["用途"]["value"] == "CI 构建机\n第二行"


def test_an_instance_is_titled_by_its_originator_and_form(sandbox, workflow, token):
    result = get_instance(workflow, token, started(sandbox))
    assert result["title"] == "张三提交的云资源申请" and result["originatorUserId"] == "zhangsan01"
    assert "processCode" not in result  # as the doc says


def test_a_start_is_the_first_operation_record_and_leaves_a_running_task(sandbox, workflow, token):
    result = get_instance(workflow, token, started(sandbox))
    (start,) = result["operationRecords"]
    assert (start["userId"], start["type"], start["result"]) == (
        "zhangsan01",
        "START_PROCESS_INSTANCE",
        "NONE",
    )
    (task,) = result["tasks"]
    assert (task["userId"], task["status"], task["result"]) == ("manager01", "RUNNING", "NONE")
    assert isinstance(task["taskId"], int)


@pytest.mark.parametrize(
    ("action", "user", "record", "task"),
    [
        ("approve", None, ("manager01", "EXECUTE_TASK_NORMAL", "AGREE"), ("COMPLETED", "AGREE")),
        ("refuse", "lisi02", ("lisi02", "EXECUTE_TASK_NORMAL", "REFUSE"), ("COMPLETED", "REFUSE")),
        (
            "terminate",
            None,
            ("zhangsan01", "TERMINATE_PROCESS_INSTANCE", "NONE"),
            ("CANCELED", "NONE"),
        ),
    ],
)
def test_a_decision_is_recorded_by_whoever_made_it(
    sandbox, workflow, token, action, user, record, task
):
    instance_id = started(sandbox)
    named = {"userId": user} if user else {}
    decided = requests.post(f"{sandbox.url}/console/{instance_id}/{action}", data=named, timeout=5)
    assert decided.status_code == 200  # followed the redirect to the console
    result = get_instance(workflow, token, instance_id)
    last = result["operationRecords"][-1]
    assert (last["userId"], last["type"], last["result"]) == record
    assert (result["tasks"][0]["status"], result["tasks"][0]["result"]) == task


def test_a_decision_by_someone_outside_the_organisation_is_refused(sandbox):
    instance_id = started(sandbox)
    answer = requests.post(
        f"{sandbox.url}/console/{instance_id}/approve", data={"userId": "nobody"}, timeout=5
    )
    assert answer.status_code == 400 and answer.json()["code"] == "userNotExist"
    assert sandbox.state.instances[instance_id].status == "RUNNING"


def test_an_api_start_with_a_select_value_the_form_does_not_offer_is_refused(sandbox, token):
    values = [{"name": k, "value": v} for k, v in (VALUES | {"可用区": "cn-shanghai-a"}).items()]
    body = {
        "processCode": CLOUD,
        "originatorUserId": "zhangsan01",
        "deptId": -1,
        "formComponentValues": values,
    }
    answer = requests.post(
        f"{sandbox.url}/v1.0/workflow/processInstances",
        json=body,
        headers={"x-acs-dingtalk-access-token": token},
        timeout=5,
    )
    assert answer.status_code == 400 and answer.json()["code"] == "formConverterError"
    assert answer.json()["message"] == "表单数据校验失败，失败控件：可用区"


def test_an_api_start_on_the_license_form_is_titled_by_its_originator(sandbox, workflow, token):
    instance = sandbox.state.start(PROCESS_CODE, "manager01", -1, [{"name": "产品", "value": "x"}])
    result = get_instance(workflow, token, instance.id)
    assert result["title"] == "王经理提交的许可申请"
    assert result["formComponentValues"][0]["id"] == "TextField-2"


# Comments


def test_a_comment_reads_back_as_an_add_remark_record(sandbox, workflow, token):
    instance_id = started(sandbox)
    answer = comment(workflow, token, process_instance_id=instance_id, text="已开通\nECS i-123")
    assert answer.body.to_map() == {"result": True, "success": True}
    last = get_instance(workflow, token, instance_id)["operationRecords"][-1]
    assert (last["userId"], last["type"], last["remark"]) == (
        "sandbox-approver",
        "ADD_REMARK",
        "已开通\nECS i-123",
    )


def test_a_comments_photos_read_back_as_its_images(sandbox, workflow, token):
    instance_id = started(sandbox)
    photos = wf.AddProcessInstanceCommentRequestFile(photos=["https://example.com/a.png"])
    comment(workflow, token, process_instance_id=instance_id, file=photos)
    last = get_instance(workflow, token, instance_id)["operationRecords"][-1]
    assert last["images"] == ["https://example.com/a.png"]


def test_a_comment_of_1024_characters_is_taken(sandbox, workflow, token):
    instance_id = started(sandbox)
    assert comment(workflow, token, process_instance_id=instance_id, text="字" * 1024).body.result


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"process_instance_id": ""}, "invalidInstanceId"),
        ({"process_instance_id": None}, "invalidInstanceId"),
        ({"text": ""}, "invalidInstanceCommentText"),
        ({"comment_user_id": None}, "invalidInstanceCommentUserId"),
        ({"text": "字" * 1025}, "invalidParameter"),
        ({"comment_user_id": "nobody"}, "userNotExist"),
        ({"process_instance_id": "sbx-999999-none"}, "aflowProcessInstNotExist"),
        (
            {"file": wf.AddProcessInstanceCommentRequestFile(attachments=[ATTACHMENT] * 21)},
            "invalidParameter",
        ),
    ],
)
def test_a_comment_dingtalk_would_not_take_is_refused_with_its_code(
    sandbox, workflow, token, fields, code
):
    instance_id = started(sandbox)
    call = {"process_instance_id": instance_id} | fields
    assert refused(comment, workflow, token, **call) == (400, code)
    assert sandbox.state.instances[instance_id].comments() == []


def test_a_comment_needs_a_token(sandbox, workflow):
    instance_id = started(sandbox)
    assert refused(comment, workflow, "forged", process_instance_id=instance_id) == (
        400,
        "InvalidAuthentication",
    )


def test_a_comment_shows_in_the_console_with_its_line_breaks_and_author(sandbox, workflow, token):
    instance_id = started(sandbox)
    comment(workflow, token, process_instance_id=instance_id, text="第一行\n<b>第二行</b>")
    page = requests.get(sandbox.url, timeout=5).text
    assert "审批机器人" in page and "第一行\n&lt;b&gt;第二行&lt;/b&gt;" in page


# Form schema


def test_the_cloud_request_form_schema_lists_its_components(workflow, token):
    result = schema(workflow, token, CLOUD).body.result
    assert (result.form_code, result.name, result.status) == (CLOUD, "云资源申请", "PUBLISHED")
    items = [(i.component_name, i.props) for i in result.schema_content.items]
    assert [(name, p.id, p.label, p.required, p.options or ()) for name, p in items] == [
        (c.component_name, c.id, c.label, c.required, list(c.options) or ())
        for c in CLOUD_REQUEST_FORM.components
    ]
    assert items[1][1].options == ["ecs.g7.large", "ecs.c7.large", "ecs.t6-c1m1.large"]


def test_the_license_form_schema_is_one_text_field_per_label(workflow, token):
    result = schema(workflow, token, PROCESS_CODE).body.result
    assert result.name == "许可申请"
    assert [(i.component_name, i.props.label) for i in result.schema_content.items] == [
        ("TextField", label) for label in FORM_COMPONENTS
    ]


@pytest.mark.parametrize(
    ("process_code", "code"), [("PROC-NOPE", "formNotExist"), (None, "invalidParameter")]
)
def test_a_schema_of_no_form_is_refused(workflow, token, process_code, code):
    assert refused(schema, workflow, token, process_code) == (400, code)


# Starting from the console


@pytest.mark.parametrize(
    ("originator", "values", "code"),
    [
        ("nobody", {}, "userNotExist"),
        ("zhangsan01", {"颜色": "红"}, "formConverterError"),
        ("zhangsan01", {"实例规格": "ecs.huge"}, "formConverterError"),
        ("zhangsan01", {"镜像": ""}, "formConverterError"),
        ("zhangsan01", {"系统盘(GiB)": "forty"}, "formConverterError"),
    ],
)
def test_a_console_start_the_client_would_not_submit_is_refused(sandbox, originator, values, code):
    answer = console_start(sandbox, originator, **values)
    assert answer.status_code == 400 and answer.json()["code"] == code
    assert sandbox.state.instances == {}


def test_a_missing_required_value_is_named(sandbox):
    answer = console_start(sandbox, 镜像="")
    assert answer.json()["message"] == "表单数据校验失败，必填控件未填写：镜像"


def test_an_html_start_goes_back_to_the_console(sandbox):
    form = {"originatorUserId": "lisi02"} | {
        c.id: VALUES[c.label] for c in CLOUD_REQUEST_FORM.components
    }
    answer = requests.post(
        f"{sandbox.url}/console/start/{CLOUD}", data=form, allow_redirects=False, timeout=5
    )
    assert answer.status_code == 302 and answer.headers["Location"] == "/"
    (instance,) = sandbox.state.instances.values()
    assert instance.title() == "李四提交的云资源申请"


def test_an_html_start_refused_shows_the_form_again_with_the_message(sandbox):
    form = {"originatorUserId": "lisi02", "TextField-NAME": "build-01"}
    answer = requests.post(f"{sandbox.url}/console/start/{CLOUD}", data=form, timeout=5)
    assert answer.status_code == 400 and "必填控件未填写：实例规格" in answer.text
    assert 'value="build-01"' in answer.text  # what was typed is kept


def test_the_start_pages_list_the_forms_and_offer_their_options(sandbox):
    listed = requests.get(f"{sandbox.url}/console/start", timeout=5).text
    form = requests.get(f"{sandbox.url}/console/start/{CLOUD}", timeout=5).text
    assert "云资源申请" in listed and "许可申请" in listed
    assert "<option>ecs.t6-c1m1.large</option>" in form and "张三 (zhangsan01)" in form


def test_a_console_start_delivers_no_event_but_a_decision_does(unheard):
    instance_id = started(unheard)
    time.sleep(0.3)
    assert unheard.state.pushes == []
    requests.post(f"{unheard.url}/console/{instance_id}/approve", timeout=5).raise_for_status()
    deadline = time.monotonic() + 5
    while not unheard.state.pushes and time.monotonic() < deadline:
        time.sleep(0.05)
    assert unheard.state.pushes[0].instance_id == instance_id


def test_the_console_shows_the_form_its_originator_and_values(sandbox):
    started(sandbox)
    page = requests.get(sandbox.url, timeout=5).text
    assert "云资源申请" in page and CLOUD in page and "张三" in page
    assert "<dt>可用区</dt>" in page and "cn-hangzhou-i" in page


# Work notifications


def test_a_work_notification_is_kept_for_its_user(sandbox, token):
    answer = notify(sandbox, token)
    assert answer["errcode"] == 0 and answer["errmsg"] == "ok"
    assert isinstance(answer["task_id"], int) and answer["request_id"]
    (got,) = notifications(sandbox)
    assert (got["userId"], got["agentId"], got["msg"], got["taskId"]) == (
        "zhangsan01",
        AGENT_ID,
        TEXT,
        answer["task_id"],
    )


def test_a_form_encoded_work_notification_carries_msg_as_json_text(sandbox, token):
    form = {
        "agent_id": str(AGENT_ID),
        "userid_list": "lisi02",
        "msg": '{"msgtype":"text","text":{"content":"你好"}}',
    }
    answer = requests.post(
        f"{sandbox.url}/topapi/message/corpconversation/asyncsend_v2",
        params={"access_token": token},
        data=form,
        timeout=5,
    )
    assert answer.json()["errcode"] == 0
    assert notifications(sandbox)[0]["msg"] == {"msgtype": "text", "text": {"content": "你好"}}


@pytest.mark.parametrize(
    "msg",
    [
        {"msgtype": "markdown", "markdown": {"title": "开通", "text": "### 已开通"}},
        {
            "msgtype": "action_card",
            "action_card": {
                "title": "开通",
                "markdown": "已开通",
                "single_title": "查看",
                "single_url": "https://example.com/a",
            },
        },
        {
            "msgtype": "action_card",
            "action_card": {
                "title": "开通",
                "markdown": "已开通",
                "btn_orientation": "0",
                "btn_json_list": [{"title": "查看", "action_url": "https://example.com/a"}],
            },
        },
        {
            "msgtype": "link",
            "link": {"messageUrl": "https://e.com", "picUrl": "@lAD", "title": "t", "text": "x"},
        },
        {"msgtype": "oa", "oa": {"message_url": "https://e.com", "head": {"bgcolor": "FFBBBBBB"}}},
    ],
)
def test_each_message_type_with_its_fields_is_taken(sandbox, token, msg):
    assert notify(sandbox, token, msg=msg)["errcode"] == 0


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({"agent_id": 42}, 400002),
        ({"agent_id": None}, 400002),
        ({"userid_list": None}, 400002),
        ({"userid_list": "zhangsan01,nobody"}, 33012),
        ({"userid_list": ",".join(["zhangsan01"] * 101)}, 33012),
        ({"msg": {"msgtype": "text", "text": {"content": "长" * 700}}}, 400002),
        ({"msg": {"msgtype": "text", "text": {}}}, 400002),
        ({"msg": {"msgtype": "markdown", "markdown": {"text": "no title"}}}, 400002),
        (
            {"msg": {"msgtype": "action_card", "action_card": {"title": "t", "markdown": "m"}}},
            400002,
        ),
        ({"msg": {"msgtype": "oa", "oa": {"message_url": "https://e.com"}}}, 400002),
        ({"msg": {"msgtype": "feedCard", "feedCard": {}}}, 400002),
        ({"msg": None}, 400002),
    ],
)
def test_a_work_notification_dingtalk_would_not_take_is_refused(sandbox, token, body, errcode):
    assert notify(sandbox, token, **body)["errcode"] == errcode
    assert notifications(sandbox) == []


def test_a_wrong_agent_id_is_named_in_the_refusal(sandbox, token):
    assert "agent_id" in notify(sandbox, token, agent_id=42)["errmsg"]


def test_a_msg_over_2048_bytes_is_refused_saying_so(sandbox, token):
    msg = {"msgtype": "text", "text": {"content": "长" * 700}}  # 2,100 bytes, 700 characters
    assert "2048" in notify(sandbox, token, msg=msg)["errmsg"]


def test_a_work_notification_needs_a_token(sandbox):
    assert notify(sandbox, "forged")["errcode"] == 40014


def test_the_same_content_reaches_a_user_once_a_day_though_both_are_answered_ok(sandbox, token):
    assert notify(sandbox, token)["errcode"] == notify(sandbox, token)["errcode"] == 0
    assert len(notifications(sandbox)) == 1


def test_the_notifications_page_shows_each_users_newest_first_escaped(sandbox, token):
    for n in (1, 2):
        notify(sandbox, token, msg={"msgtype": "text", "text": {"content": f"<i>第{n}条</i>\n完"}})
    page = requests.get(f"{sandbox.url}/console/notifications", timeout=5).text
    assert page.index("&lt;i&gt;第2条&lt;/i&gt;\n完") < page.index("&lt;i&gt;第1条")
    assert 'href="/console/notifications"' in requests.get(sandbox.url, timeout=5).text


# Faults and calls


def test_a_rate_limit_aimed_at_comments_hits_them_and_is_recorded(sandbox, workflow, token):
    instance_id = started(sandbox)
    faults(sandbox, rate_limit=1, rate_limit_api="comment")
    schema(workflow, token, CLOUD)
    throttled = refused(comment, workflow, token, process_instance_id=instance_id)
    assert throttled == (403, "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi")
    comment(workflow, token, process_instance_id=instance_id)
    assert sandbox.state.answers("comment") == [403, 200]
    assert sandbox.state.answers("schema") == [200]


def test_a_server_error_aimed_at_the_schema_hits_it(sandbox, workflow, token):
    faults(sandbox, server_error=1, server_error_api="schema")
    assert refused(schema, workflow, token, CLOUD) == (500, "systemError")
    assert schema(workflow, token, CLOUD).body.result.name == "云资源申请"


def test_a_rate_limit_on_work_notifications_answers_as_the_old_api_does(sandbox, token):
    faults(sandbox, rate_limit=1, rate_limit_api="notify")
    assert notify(sandbox, token)["errcode"] == 90018
    assert notify(sandbox, token)["errcode"] == 0
    assert sandbox.state.answers("notify") == [200, 200] and len(notifications(sandbox)) == 1
