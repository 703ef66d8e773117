"""The DingTalk sandbox's HTTP side: the open API parts dingpass uses, and the approver console.

It refuses what DingTalk refuses, in DingTalk's words: a start request for a form it does
not have, with components that form lacks, or without deptId when no approvers are given.
"""

import logging
import secrets
import time
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
)

from sandbox.delivery import Deliverer
from sandbox.state import TOKEN_SECONDS, SandboxState

log = logging.getLogger(__name__)
api = Blueprint("dingtalk_api", __name__)
console = Blueprint("console", __name__, template_folder="templates")
APIS = {
    "dingtalk_api.access_token": "token",
    "dingtalk_api.start_instance": "start",
    "dingtalk_api.get_instance": "get",
    "dingtalk_api.list_instance_ids": "list",
    "dingtalk_api.failed_callbacks": "failed",
    "dingtalk_api.open_stream_connection": "open",
}
"""The short names tests aim faults at (``rate_limit_api``) and read calls by."""
GATEWAY_PAGE = "<html><head><title>{status}</title></head><body><h1>{status}</h1>\
<p>The request could not be served. Please try again later.</p><hr><p>Tengine</p></body></html>"
"""What a gateway in front of DingTalk answers instead of JSON (an error or throttling page)."""
BAD_INSTANCE_PARAMETER = (
    "审批实例参数错误，具体可能为:发起人、审批人、抄送人的userid错误，发起部门id错误，"
    "发起人不在发起部门中"
)


def create_app(state: SandboxState, deliverer: Deliverer) -> Flask:
    """The sandbox's Flask app over ``state``."""
    app = Flask("sandbox")
    app.extensions["sandbox"] = (state, deliverer)
    app.register_blueprint(api)
    app.register_blueprint(console)
    return app


def _state() -> SandboxState:
    state: SandboxState = current_app.extensions["sandbox"][0]
    return state


def error(status: int, code: str, message: str) -> tuple[Response, int]:
    """DingTalk's new-API error body."""
    return jsonify(
        {"code": code, "message": message, "requestid": secrets.token_hex(8).upper()}
    ), status


@api.before_request
def faults() -> Response | tuple[Response, int] | None:
    """Apply the fault switches to API calls (never to the console or the switches)."""
    name = APIS.get(request.endpoint or "")
    if name is None:
        return None
    switches = _state().faults
    if switches.slow_seconds:
        time.sleep(switches.slow_seconds)
    if switches.take("rate_limit", name):
        return error(403, "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", "调用频率超过限制")
    if switches.take("server_error", name):
        return error(500, "systemError", "系统繁忙")
    if switches.take("html_error", name):
        status = switches.html_error_status
        return Response(GATEWAY_PAGE.format(status=status), status, mimetype="text/html")
    return None


@api.after_request
def record(response: Response) -> Response:
    """Keep which API was called and what it answered, for tests to read."""
    name = APIS.get(request.endpoint or "")
    if name is not None:
        _state().record(name, response.status_code)
    return response


@api.post("/v1.0/oauth2/accessToken")
def access_token() -> Any:
    body = request.get_json(silent=True) or {}
    token = _state().issue_token(str(body.get("appKey")), str(body.get("appSecret")))
    if token is None:
        return error(400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
    return {"accessToken": token, "expireIn": TOKEN_SECONDS}


def _authorised() -> tuple[Response, int] | None:
    if not _state().token_valid(request.headers.get("x-acs-dingtalk-access-token", "")):
        return error(400, "InvalidAuthentication", "不合法的access_token")
    return None


@api.post("/v1.0/workflow/processInstances")
def start_instance() -> Any:
    if (refused := _authorised()) is not None:
        return refused
    body = request.get_json(silent=True) or {}
    state = _state()
    if (refused := _refusal(body, state.forms.get(str(body.get("processCode"))))) is not None:
        return refused
    time.sleep(state.faults.slow_start_seconds)
    dept_id = body.get("deptId")
    instance = state.start(
        body["processCode"],
        body["originatorUserId"],
        dept_id if isinstance(dept_id, int) else -1,
        body["formComponentValues"],
    )
    return {"instanceId": instance.id}


def _refusal(
    body: dict[str, Any], components: frozenset[str] | None
) -> tuple[Response, int] | None:
    """DingTalk's answer to a start request it refuses; None if it takes it."""
    if components is None:
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
    unknown = [value["name"] for value in form if value["name"] not in components]
    if unknown:
        log.info("sandbox refused a start: the form has no component %s", ", ".join(unknown))
        return error(400, "formConverterError", f"表单数据校验失败，失败控件：{unknown[0]}")
    return None


@api.get("/v1.0/workflow/processInstances")
def get_instance() -> Any:
    if (refused := _authorised()) is not None:
        return refused
    asked = request.args.get("processInstanceId", "")
    state = _state()
    with state.lock:
        state.asked.append(asked)
    instance = state.instances.get(asked)
    if instance is None:
        return error(400, "processInstanceNotExist", "审批实例不存在")
    result = {
        "title": instance.title(),
        "status": instance.status,
        "result": instance.result,
        "businessId": instance.id.split("-")[1],
        "originatorUserId": instance.originator,
        "originatorDeptId": str(instance.dept_id),
        "formComponentValues": instance.form,
        "createTime": _iso(instance.created_ms),
        "finishTime": _iso(instance.finished_ms),
    }
    return {"result": result, "success": True}


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
            for i in _state().instances.values()
            if i.process_code == body.get("processCode")
            and body["startTime"] <= i.created_ms <= end
            and (not body.get("userIds") or i.originator in body["userIds"])
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
    if not _state().token_valid(request.args.get("access_token", "")):
        return {"errcode": 40014, "errmsg": "不合法的access_token"}
    batch, more = _state().take_failed()
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
    """Tests switch faults on: {"rate_limit": 1, "rate_limit_api": "start", "drop_events": 1}."""
    switches = _state().faults
    asked = request.get_json(silent=True) or {}
    known = switches.switches()
    unknown = sorted(name for name in asked if name not in known)
    if unknown:  # a misspelt switch would leave the test running without its fault
        listed = ", ".join(known)
        return error(400, "unknownFault", f"no fault {', '.join(unknown)}; the faults: {listed}")
    for name, value in asked.items():
        setattr(switches, name, value)
    return {"faults": switches.switches()}


@console.get("/")
def console_page() -> str:
    state = _state()
    instances = sorted(state.instances.values(), key=lambda i: i.created_ms, reverse=True)
    return render_template("console.html", instances=instances)


@console.post("/console/<instance_id>/<action>")
def decide(instance_id: str, action: str) -> Any:
    if action not in ("approve", "refuse", "terminate"):
        return error(404, "notFound", "no such action")
    state, deliverer = current_app.extensions["sandbox"]
    instance = state.decide(instance_id, action)
    if instance is None:
        return error(409, "instanceNotRunning", "the instance is not running")
    deliverer.publish(instance)
    if request.accept_mimetypes.best == "application/json":
        return {
            "instanceId": instance.id,
            "status": instance.status,
            "result": instance.result,
        }
    return redirect("/")


def _iso(milliseconds: int | None) -> str | None:
    if milliseconds is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(milliseconds / 1000))
