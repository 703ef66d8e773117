"""Work notifications (工作通知): DingTalk's old asyncsend_v2 API, and what each employee got.

It refuses what DingTalk refuses, as the old API does (HTTP 200 with an errcode): a token it
did not issue, another app's agent_id, a user not in the organisation, a msg over 2048 bytes
or without its type's required fields (dingtalk-results.md §5). Tests read what arrived at
``/sandbox/notifications``; people read it at ``/console/notifications``.
"""

import json
import time
from typing import Any

from flask import Blueprint, render_template, request

from sandbox.dingtalk_api import old_error, sandbox_state
from sandbox.state import Notification, SandboxState

bp = Blueprint("work_notices", __name__, template_folder="templates")
MSG_MAX_BYTES = 2048
USERS_MAX = 100
BAD_PARAMETER = 400002
BAD_USERID = 33012
MSG_FIELDS = {
    "text": ("content",),
    "markdown": ("title", "text"),
    "link": ("messageUrl", "picUrl", "title", "text"),
    "action_card": ("title", "markdown"),
    "oa": ("message_url",),
}
"""Each msgtype the sandbox takes, and the fields of its part that must not be empty."""
Answer = dict[str, Any]


@bp.post("/topapi/message/corpconversation/asyncsend_v2")
def send() -> Answer:
    state = sandbox_state()
    if not state.token_valid(request.args.get("access_token", "")):
        return old_error(40014, "不合法的access_token")
    body = _body()
    if body is None:
        return old_error(43004, "无效的HTTP HEADER Content-Type: send JSON or a form")
    refused, users, msg = _check(body, state)
    if refused is not None:
        return refused
    task_id = state.notify(users, msg)
    return {"errcode": 0, "errmsg": "ok", "task_id": task_id, "request_id": _request_id()}


def _body() -> dict[str, Any] | None:
    """The request's fields, from a JSON object or a form; None for any other body."""
    if request.is_json:
        body = request.get_json(silent=True)
        return body if isinstance(body, dict) else {}
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return request.form.to_dict()
    return None


def _check(body: dict[str, Any], state: SandboxState) -> tuple[Answer | None, list[str], Any]:
    """The refusal of a send (or None), its recipients and its msg."""
    if (refused := _agent_refusal(body.get("agent_id"), state.agent_id)) is not None:
        return refused, [], None
    users, refused = _recipients(body.get("userid_list"), state)
    if refused is not None:
        return refused, [], None
    msg, problem = _msg(body.get("msg"))
    if problem is not None:
        return old_error(BAD_PARAMETER, problem), [], None
    return None, users, msg


def _agent_refusal(agent_id: Any, ours: int) -> Answer | None:
    if isinstance(agent_id, str) and agent_id.isdigit():
        agent_id = int(agent_id)  # a form carries it as text
    if isinstance(agent_id, int) and not isinstance(agent_id, bool) and agent_id == ours:
        return None
    message = f"agent_id 不合法: {agent_id!r}; this app's AgentId is {ours}"
    return old_error(BAD_PARAMETER, message)


def _recipients(userid_list: Any, state: SandboxState) -> tuple[list[str], Answer | None]:
    """The userIds of ``userid_list`` (comma separated), or DingTalk's refusal."""
    if not isinstance(userid_list, str) or not userid_list.strip():
        message = "userid_list is required (the sandbox sends to userid_list only)"
        return [], old_error(BAD_PARAMETER, message)
    users = [user.strip() for user in userid_list.split(",")]
    if len(users) > USERS_MAX:
        return [], old_error(BAD_USERID, f"无效的USERID: userid_list has {len(users)} (max 100)")
    unknown = [user for user in users if user not in state.users]
    if unknown:
        return [], old_error(BAD_USERID, f"无效的USERID: {', '.join(unknown)}")
    return list(dict.fromkeys(users)), None


def _msg(given: Any) -> tuple[dict[str, Any], str | None]:
    """The msg as an object, and what is wrong with it (None if nothing)."""
    text = given if isinstance(given, str) else json.dumps(given, ensure_ascii=False)
    try:
        msg = json.loads(given) if isinstance(given, str) else given
    except ValueError:
        return {}, "msg is not JSON"
    if not isinstance(msg, dict):
        return {}, "msg is required: a JSON object with msgtype"
    size = len(text.encode())
    if size > MSG_MAX_BYTES:
        return msg, f"msg is {size} bytes as UTF-8 JSON; at most {MSG_MAX_BYTES}"
    return msg, _msg_problem(msg)


def _msg_problem(msg: dict[str, Any]) -> str | None:
    """What the msg's type lacks, or None."""
    msgtype = msg.get("msgtype")
    if msgtype not in MSG_FIELDS:
        return f"msgtype {msgtype!r} is not one of {', '.join(MSG_FIELDS)}"
    part = msg.get(msgtype)
    if not isinstance(part, dict):
        return f"msg.{msgtype} is required: an object"
    missing = [name for name in MSG_FIELDS[msgtype] if not _filled(part.get(name))]
    if missing:
        return f"msg.{msgtype} lacks {', '.join(missing)}"
    if msgtype == "action_card" and not _card_buttons_ok(part):
        return "msg.action_card needs single_title and single_url, or btn_json_list"
    if msgtype == "oa" and not _filled((part.get("head") or {}).get("bgcolor")):
        return "msg.oa lacks head.bgcolor"
    return None


def _card_buttons_ok(card: dict[str, Any]) -> bool:
    if _filled(card.get("single_title")) and _filled(card.get("single_url")):
        return True
    buttons = card.get("btn_json_list")
    return (
        isinstance(buttons, list)
        and bool(buttons)
        and all(
            isinstance(b, dict) and _filled(b.get("title")) and _filled(b.get("action_url"))
            for b in buttons
        )
    )


def _filled(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _request_id() -> str:
    return f"{int(time.time() * 1000):x}"


@bp.get("/sandbox/notifications")
def listing() -> Answer:
    """Every work notification as its recipient got it, oldest first (``?userId=`` for one)."""
    state, user = sandbox_state(), request.args.get("userId")
    with state.lock:
        got = [n for n in state.notifications if user in (None, n.user_id)]
    return {"notifications": [_listed(n) for n in got]}


def _listed(notification: Notification) -> Answer:
    return {
        "userId": notification.user_id,
        "agentId": notification.agent_id,
        "msg": notification.msg,
        "taskId": notification.task_id,
        "at": _at(notification.at),
    }


@bp.get("/console/notifications")
def page() -> str:
    """Each employee's work notifications, newest first."""
    state = sandbox_state()
    with state.lock:
        got = list(state.notifications)
    people = [
        (user_id, name, [_shown(n) for n in reversed(got) if n.user_id == user_id])
        for user_id, name in state.users.items()
    ]
    return render_template("notifications.html", people=people)


def _shown(notification: Notification) -> dict[str, Any]:
    """What the DingTalk client shows of a notification: a title, text, and links."""
    msg = notification.msg
    part: dict[str, Any] = msg.get(msg["msgtype"], {})
    text = part.get("content") or part.get("text") or part.get("markdown") or ""
    links = [(b["title"], b["action_url"]) for b in part.get("btn_json_list") or []]
    if part.get("single_url"):
        links.append((part.get("single_title", ""), part["single_url"]))
    if msg["msgtype"] in ("oa", "link"):
        links.append(("打开", part.get("message_url") or part.get("messageUrl")))
        body = part.get("body") or {}
        text = text or body.get("content", "")
        rows = [f"{row.get('key', '')}{row.get('value', '')}" for row in body.get("form") or []]
        text = "\n".join(filter(None, [body.get("title", ""), *rows, text]))
    return {
        "msgtype": msg["msgtype"],
        "title": part.get("title", ""),
        "text": text,
        "links": [(title, url) for title, url in links if _web(url)],
        "at": _at(notification.at),
        "task_id": notification.task_id,
    }


def _web(url: Any) -> bool:
    """Whether a link is one a page may show (not ``javascript:``, say)."""
    return isinstance(url, str) and url.startswith(("https://", "http://", "dingtalk://"))


def _at(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
