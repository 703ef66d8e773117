"""The DingTalk sandbox's HTTP side: the open API parts dingpass uses, and the approver console."""

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

api = Blueprint("dingtalk_api", __name__)
console = Blueprint("console", __name__, template_folder="templates")


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
def faults() -> tuple[Response, int] | None:
    """Apply the fault switches to API calls (never to the console)."""
    state = _state()
    if state.faults.slow_seconds:
        time.sleep(state.faults.slow_seconds)
    if state.faults.take("rate_limit"):
        return error(403, "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", "调用频率超过限制")
    if state.faults.take("server_error"):
        return error(500, "systemError", "系统繁忙")
    return None


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
    if body.get("processCode") not in state.process_codes:
        return error(400, "processCodeError", "获取审批模板失败或者模板已被删除")
    form = body.get("formComponentValues")
    if not isinstance(form, list) or not all(
        isinstance(v, dict) and "name" in v and "value" in v for v in form
    ):
        return error(400, "formConverterError", "表单数据转换失败")
    if not body.get("originatorUserId"):
        return error(400, "invalidParameter", "originatorUserId is required")
    time.sleep(state.faults.slow_start_seconds)
    instance = state.start(
        body["processCode"],
        body["originatorUserId"],
        int(body.get("deptId") or -1),
        form,
    )
    return {"instanceId": instance.id}


@api.get("/v1.0/workflow/processInstances")
def get_instance() -> Any:
    if (refused := _authorised()) is not None:
        return refused
    instance = _state().instances.get(request.args.get("processInstanceId", ""))
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
    """Tests switch faults on: {"rate_limit": 1, "drop_events": 1, "slow_seconds": 2, ...}."""
    faults = _state().faults
    for name, value in (request.get_json(silent=True) or {}).items():
        if hasattr(faults, name):
            setattr(faults, name, value)
    return {"faults": vars(faults)}


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
