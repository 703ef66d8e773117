"""The DingTalk sandbox's open API: the parts dingpass uses, and the fault switches.

It refuses what DingTalk refuses, in DingTalk's words: a start request for a form it does
not have, with components that form lacks or a select value it does not offer, or without
deptId when no approvers are given; a comment without its text, by someone not in the
organisation, or on an instance it does not have; a schema of a form it does not have.
"""

import hashlib
import logging
import secrets
import time
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request

from sandbox.forms import FormTemplate, refused_label, schema_item
from sandbox.instance_view import instance_result
from sandbox.state import APPROVER, THROTTLED, TOKEN_SECONDS, SandboxState

log = logging.getLogger(__name__)
api = Blueprint("dingtalk_api", __name__)
APIS = {
    "dingtalk_api.access_token": "token",
    "dingtalk_api.start_instance": "start",
    "dingtalk_api.get_instance": "get",
    "dingtalk_api.list_instance_ids": "list",
    "dingtalk_api.failed_callbacks": "failed",
    "dingtalk_api.open_stream_connection": "open",
    "dingtalk_api.add_comment": "comment",
    "dingtalk_api.form_schema": "schema",
    "work_notices.send": "notify",
}
"""The short names tests aim faults at (``rate_limit_api``) and read calls by."""
OLD_APIS = {"failed", "notify"}
"""APIs on oapi.dingtalk.com: they answer errors as HTTP 200 with an errcode."""
GATEWAY_PAGE = "<html><head><title>{status}</title></head><body><h1>{status}</h1>\
<p>The request could not be served. Please try again later.</p><hr><p>Tengine</p></body></html>"
"""What a gateway in front of DingTalk answers instead of JSON (an error or throttling page)."""
BAD_INSTANCE_PARAMETER = (
    "审批实例参数错误，具体可能为:发起人、审批人、抄送人的userid错误，发起部门id错误，"
    "发起人不在发起部门中"
)
COMMENT_TEXT_MAX = 1024
"""Characters a comment may have."""
COMMENT_ATTACHMENTS_MAX = 20
BAD_COMMENT = "添加审批评论参数错误"


def sandbox_state() -> SandboxState:
    """The state of the sandbox serving this request."""
    state: SandboxState = current_app.extensions["sandbox"][0]
    return state


def error(status: int, code: str, message: str) -> tuple[Response, int]:
    """DingTalk's new-API error body."""
    return jsonify(
        {"code": code, "message": message, "requestid": secrets.token_hex(8).upper()}
    ), status


def old_error(errcode: int, errmsg: str) -> dict[str, Any]:
    """DingTalk's old-API (oapi) error body; it comes with HTTP 200."""
    return {"errcode": errcode, "errmsg": errmsg, "request_id": secrets.token_hex(6)}


def faults() -> Response | tuple[Response, int] | dict[str, Any] | None:
    """Apply the fault switches to API calls (never to the console or the switches)."""
    name = APIS.get(request.endpoint or "")
    if name is None:
        return None
    switches = sandbox_state().faults
    if switches.slow_seconds:
        time.sleep(switches.slow_seconds)
    if switches.take("rate_limit", name) or _over_qps(name):
        return _throttled(name)
    if switches.take("server_error", name):
        if name in OLD_APIS:
            return old_error(-1, "系统繁忙")
        return error(500, "systemError", "系统繁忙")
    if switches.take("html_error", name):
        status = switches.html_error_status
        return Response(GATEWAY_PAGE.format(status=status), status, mimetype="text/html")
    return None


def _over_qps(name: str) -> bool:
    """Whether the caller's app has used up this second's calls of API ``name``."""
    state = sandbox_state()
    if state.faults.qps_limit is None:
        return False
    app_key = _caller(name)
    return app_key is not None and not state.admit(app_key, name)


def _caller(name: str) -> str | None:
    """The app key a call counts against: its token's, or for the calls that get a token or
    a Stream connection, the key in the body. None when no app is known (a bad token)."""
    if name in ("token", "open"):
        body = request.get_json(silent=True)
        field = "appKey" if name == "token" else "clientId"
        key = body.get(field) if isinstance(body, dict) else None
        return key if isinstance(key, str) else None
    if name in OLD_APIS:
        token = request.args.get("access_token", "")
    else:
        token = request.headers.get("x-acs-dingtalk-access-token", "")
    return sandbox_state().token_app(token)


def _throttled(name: str) -> Response | tuple[Response, int] | dict[str, Any]:
    """DingTalk's answer to an app calling an API more often than it may."""
    new_code, old_code = THROTTLED
    g.sandbox_refusal = old_code if name in OLD_APIS else new_code
    if name in OLD_APIS:
        return old_error(int(old_code), "当前企业调用该接口超过每秒调用频率限制")
    return error(403, new_code, "调用频率超过限制")


def record(response: Response) -> Response:
    """Keep which API was called and what it answered, for tests to read."""
    name = APIS.get(request.endpoint or "")
    if name is not None:
        sandbox_state().record(name, response.status_code, g.get("sandbox_refusal", ""))
    return response


@api.post("/v1.0/oauth2/accessToken")
def access_token() -> Any:
    body = request.get_json(silent=True) or {}
    token = sandbox_state().issue_token(str(body.get("appKey")), str(body.get("appSecret")))
    if token is None:
        return error(400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
    return {"accessToken": token, "expireIn": TOKEN_SECONDS}


def _authorised() -> tuple[Response, int] | None:
    if not sandbox_state().token_valid(request.headers.get("x-acs-dingtalk-access-token", "")):
        return error(400, "InvalidAuthentication", "不合法的access_token")
    return None


@api.post("/v1.0/workflow/processInstances")
def start_instance() -> Any:
    if (refused := _authorised()) is not None:
        return refused
    body = request.get_json(silent=True) or {}
    state = sandbox_state()
    if (refused := _refusal(body, state.forms.get(str(body.get("processCode"))))) is not None:
        return refused
    time.sleep(state.faults.slow_start_seconds)
    dept_id = body.get("deptId")
    instance = state.start(
        body["processCode"],
        body["originatorUserId"],
        dept_id if isinstance(dept_id, int) else -1,
        body["formComponentValues"],
        _first_approver(body.get("approvers")),
    )
    return {"instanceId": instance.id}


def _first_approver(approvers: Any) -> str:
    """Whom an instance started with its own approvers waits on first."""
    try:
        return str(approvers[0]["userIds"][0])
    except (TypeError, LookupError):
        return APPROVER


def _refusal(body: dict[str, Any], template: FormTemplate | None) -> tuple[Response, int] | None:
    """DingTalk's answer to a start request it refuses; None if it takes it."""
    if template is None:
        return error(400, "processCodeError", "获取审批模板失败或者模板已被删除")
    form = body.get("formComponentValues")
    if not isinstance(form, list) or not all(
        isinstance(v, dict) and isinstance(v.get("name"), str) and "value" in v for v in form
    ):
        return error(400, "illegalComponent", "表单组件入参错误")
    if not body.get("originatorUserId"):
        return error(400, "invalidParameter", "发起审批参数错误")
    dept_id = body.get("deptId")
    if not body.get("approvers") and (not isinstance(dept_id, int) or isinstance(dept_id, bool)):
        # The doc: deptId is required when approvers is not given (-1 for the root department).
        log.info("sandbox refused a start: deptId is required when approvers is not given")
        return error(400, "processInstanceInvalidParameter", BAD_INSTANCE_PARAMETER)
    failed = refused_label(template, form)
    if failed is not None:
        log.info("sandbox refused a start: the form has no component %s or not its value", failed)
        return error(400, "formConverterError", f"表单数据校验失败，失败控件：{failed}")
    return None


@api.get("/v1.0/workflow/processInstances")
def get_instance() -> Any:
    if (refused := _authorised()) is not None:
        return refused
    asked = request.args.get("processInstanceId", "")
    state = sandbox_state()
    with state.lock:
        state.asked.append(asked)
    instance = state.instances.get(asked)
    if instance is None:
        return error(400, "processInstanceNotExist", "审批实例不存在")
    with state.lock:  # a decision or a comment may be arriving meanwhile
        result = instance_result(instance)
    return {"result": result, "success": True}


@api.post("/v1.0/workflow/processInstances/comments")
def add_comment() -> Any:
    if (refused := _authorised()) is not None:
        return refused
    body = request.get_json(silent=True)
    state = sandbox_state()
    if not isinstance(body, dict):
        return error(400, "invalidParameter", BAD_COMMENT)
    if (refused := _comment_refusal(body, state)) is not None:
        return refused
    photos = tuple((body.get("file") or {}).get("photos") or ())
    state.comment(body["processInstanceId"], body["commentUserId"], body["text"], photos)
    return {"result": True, "success": True}


def _comment_refusal(body: dict[str, Any], state: SandboxState) -> tuple[Response, int] | None:
    """DingTalk's answer to a comment it refuses, in the doc's order; None if it takes it."""
    instance_id, text = body.get("processInstanceId"), body.get("text")
    user_id = body.get("commentUserId")
    if not instance_id:
        return error(400, "invalidInstanceId", "审批实例id不能为空")
    if not text:
        return error(400, "invalidInstanceCommentText", "评论内容不能为空")
    if not user_id:
        return error(400, "invalidInstanceCommentUserId", "评论人userid不能为空")
    if not all(isinstance(v, str) for v in (instance_id, text, user_id)):
        return error(400, "invalidParameter", BAD_COMMENT)
    if len(text) > COMMENT_TEXT_MAX or not _comment_file_ok(body.get("file")):
        return error(400, "invalidParameter", BAD_COMMENT)
    if user_id not in state.users:
        return error(400, "userNotExist", "用户不存在")
    if instance_id not in state.instances:
        return error(400, "aflowProcessInstNotExist", "审批实例不存在")
    return None


def _comment_file_ok(file: Any) -> bool:
    """Whether a comment's ``file`` is absent or photo URLs and at most 20 attachments."""
    if file is None:
        return True
    if not isinstance(file, dict):
        return False
    photos, attachments = file.get("photos") or [], file.get("attachments") or []
    return (
        isinstance(photos, list)
        and all(isinstance(photo, str) for photo in photos)
        and isinstance(attachments, list)
        and len(attachments) <= COMMENT_ATTACHMENTS_MAX
        and all(isinstance(a, dict) and isinstance(a.get("fileId"), str) for a in attachments)
    )


@api.get("/v1.0/workflow/forms/schemas/processCodes")
def form_schema() -> Any:
    if (refused := _authorised()) is not None:
        return refused
    code = request.args.get("processCode", "")
    if not code:
        return error(400, "invalidParameter", "processCode不能为空")
    state = sandbox_state()
    form = state.forms.get(code)
    if form is None:
        return error(400, "formNotExist", "表单不存在")
    return {"result": _schema(form, state)}


def _schema(form: FormTemplate, state: SandboxState) -> dict[str, Any]:
    """The form-schema API's ``result`` for ``form``: a published form of the organisation."""
    made = str(state.forms_made_ms)
    corp_id = current_app.extensions["sandbox"][1].corp_id
    uuid = hashlib.sha256(form.process_code.encode()).hexdigest()[:24].upper()
    return {
        "formCode": form.process_code,
        "formUuid": f"FORM-{uuid}",
        "name": form.name,
        "memo": "",
        "creatorUserId": next(iter(state.users), ""),
        "appUuid": corp_id,
        "ownerIdType": "orgId",
        "status": "PUBLISHED",
        "appType": 0,
        "engineType": 0,
        "procType": "inner",
        "gmtCreate": made,
        "gmtModified": made,
        "schemaContent": {
            "title": form.name,
            "items": [schema_item(component) for component in form.components],
        },
    }


@api.post("/v1.0/gateway/connections/open")
def open_stream_connection() -> Any:
    gateway = current_app.extensions["sandbox"][1].gateway
    answer = gateway.open(request.get_json(silent=True) or {}) if gateway else None
    if answer is None:
        return error(
            401,
            "invalidClient",
            "clientId or clientSecret is wrong, or Stream mode is off",
        )
    return answer


@api.post("/v1.0/workflow/processes/instanceIds/query")
def list_instance_ids() -> Any:
    if (refused := _authorised()) is not None:
        return refused
    body = request.get_json(silent=True) or {}
    if not isinstance(body.get("startTime"), int):
        return error(400, "invalidParameter", "startTime is required")
    end = body.get("endTime") or 2**62
    found = sorted(
        (
            i
            for i in sandbox_state().instances.values()
            if i.process_code == body.get("processCode")
            and body["startTime"] <= i.created_ms <= end
            and (not body.get("userIds") or i.originator in body["userIds"])
            and (not body.get("statuses") or i.status in body["statuses"])
        ),
        key=lambda i: i.created_ms,
    )
    start, size = (
        int(body.get("nextToken") or 0),
        min(int(body.get("maxResults") or 20), 20),
    )
    page = [i.id for i in found[start : start + size]]
    result: dict[str, Any] = {"list": page}
    if start + size < len(found):
        result["nextToken"] = str(start + size)
    return {"result": result, "success": True}


@api.get("/call_back/get_call_back_failed_result")
def failed_callbacks() -> Any:
    if not sandbox_state().token_valid(request.args.get("access_token", "")):
        return old_error(40014, "不合法的access_token")
    batch, more = sandbox_state().take_failed()
    failed = [
        {
            "call_back_tag": "bpms_instance_change",
            "event_time": event.get("finishTime"),
            "bpms_instance_change": {"corpid": event.get("corpId"), "bpmsCallBackData": event},
        }
        for event in batch
    ]
    return {"errcode": 0, "errmsg": "ok", "has_more": more, "failed_list": failed}


@api.post("/sandbox/faults")
def set_faults() -> Any:
    """Tests switch faults on: {"rate_limit": 1, "rate_limit_api": "start", "drop_events": 1};
    {"qps_limit": 20} enforces DingTalk's per-app, per-API limit, {"qps_limit": null} lifts it."""
    switches = sandbox_state().faults
    asked = request.get_json(silent=True) or {}
    known = switches.switches()
    unknown = sorted(name for name in asked if name not in known)
    if unknown:  # a misspelt switch would leave the test running without its fault
        listed = ", ".join(known)
        return error(400, "unknownFault", f"no fault {', '.join(unknown)}; the faults: {listed}")
    for name, value in asked.items():
        setattr(switches, name, value)
    return {"faults": switches.switches()}
