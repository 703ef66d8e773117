"""Group robots on loopback: DingTalk's custom robot and WeCom's group robot webhooks.

They refuse what the real ones refuse, in their words (see /work/shared/robots.md): an unknown
token or key, a bad or stale signature, a message without the robot's keyword, more than 20
messages a minute. Tests register robots, switch them to refuse, and read what arrived.
"""

import base64
import hashlib
import hmac
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request

Clock = Callable[[], float]
"""Seconds since the epoch, as ``time.time``."""

RATE_WINDOW = 60.0
"""Seconds over which a robot's messages are counted."""
RATE_LIMIT = 20
"""Messages a robot takes per window, on both platforms."""
DINGTALK_THROTTLE = 600.0
"""Seconds a DingTalk robot refuses everything after going over the limit."""
TIMESTAMP_SKEW_MS = 3_600_000
"""How far a signed request's timestamp may be from the robot's clock: one hour."""

OK = {"errcode": 0, "errmsg": "ok"}
# DingTalk's answers, from its error table (robots.md §1.4). HTTP 200 for every one of them is
# UNCONFIRMED; real-world clients read errcode, so the sandbox answers 200 throughout.
DT_NO_TOKEN = {"errcode": 400101, "errmsg": "access_token不存在"}
DT_NO_JSON = {"errcode": 40035, "errmsg": "缺少参数 json"}
DT_CONTENT_TYPE = {"errcode": 43004, "errmsg": "无效的HTTP HEADER Content-Type"}
DT_MSGTYPE = {"errcode": 400105, "errmsg": "不支持的消息类型"}
DT_TOO_FAST = {"errcode": 410100, "errmsg": "发送速度太快而限流"}
DT_KEYWORD = {"errcode": 310000, "errmsg": "keywords not in content"}
DT_TIMESTAMP = {"errcode": 310000, "errmsg": "invalid timestamp"}
DT_SIGN = {"errcode": 310000, "errmsg": "sign not match"}
DT_MSGTYPES = {"text", "link", "markdown", "actionCard", "feedCard"}
# WeCom's answers. 93000 is seen in public issue threads ("invalid webhook url, hint: …");
# 45009 for a group robot over 20/min, 40008 for a body it cannot read, 44004 for empty content
# and 40058 for content over its length are UNCONFIRMED from WeCom's robot page.
WC_NO_KEY = {"errcode": 93000, "errmsg": "invalid webhook url"}
WC_TOO_FAST = {"errcode": 45009, "errmsg": "api freq out of limit"}
WC_BAD_BODY = {"errcode": 40008, "errmsg": "invalid message type"}
WC_EMPTY = {"errcode": 44004, "errmsg": "empty content"}
WC_MAX_BYTES = {"text": 2048, "markdown": 4096}  # markdown's 4096 is UNCONFIRMED
WC_MSGTYPES = {"text", "markdown", "image", "news", "file", "voice", "template_card"}

Answer = dict[str, Any]


class UnknownRobotError(KeyError):
    """A test named a robot the sandbox does not have."""


@dataclass
class Robot:
    """One registered robot and what it counts."""

    kind: str  # dingtalk | wecom
    credential: str  # DingTalk's access_token, WeCom's key
    name: str = ""
    secret: str | None = None
    keyword: str | None = None
    sent: deque[float] = field(default_factory=deque)
    throttled_until: float = 0.0
    refusals: deque[Answer] = field(default_factory=deque)

    @property
    def label(self) -> str:
        """How the messages list and the page name it."""
        return self.name or self.credential


@dataclass
class Arrival:
    """What one request carried, whether or not it was accepted."""

    kind: str
    msgtype: str = ""
    title: str = ""
    text: str = ""
    at: dict[str, Any] = field(default_factory=dict)


class Robots:
    """Every robot registered in the sandbox, and every message sent to one."""

    def __init__(self, clock: Clock = time.time) -> None:
        self.clock = clock
        self._robots: dict[str, Robot] = {}
        self._messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def add_dingtalk(
        self,
        token: str,
        secret: str | None = None,
        keyword: str | None = None,
        name: str = "",
    ) -> None:
        """Register a DingTalk custom robot: 加签 with ``secret``, 自定义关键词 ``keyword``."""
        with self._lock:
            self._robots[token] = Robot("dingtalk", token, name, secret or None, keyword or None)

    def add_wecom(self, key: str, name: str = "") -> None:
        """Register a WeCom group robot (its key is its only credential)."""
        with self._lock:
            self._robots[key] = Robot("wecom", key, name)

    def refuse(self, token_or_key: str, errcode: int, errmsg: str, times: int = 1) -> None:
        """Answer the robot's next ``times`` messages with this error instead of sending them."""
        with self._lock:
            robot = self._robots.get(token_or_key)
            if robot is None:
                raise UnknownRobotError(
                    f"no robot with token or key {token_or_key!r}: add_dingtalk() or add_wecom() it"
                )
            robot.refusals.extend({"errcode": errcode, "errmsg": errmsg} for _ in range(times))

    def messages(self) -> list[dict[str, Any]]:
        """Every message sent to a robot, in arrival order, each with the answer it got."""
        with self._lock:
            return [dict(m) for m in self._messages]

    def accepted(self) -> list[dict[str, Any]]:
        """The messages the robots took (errcode 0), newest first, as the page shows them."""
        return [m for m in reversed(self.messages()) if m["answered"]["errcode"] == 0]

    def receive_dingtalk(
        self, token: str, query: Mapping[str, str], body: Any, json_sent: bool = True
    ) -> Answer:
        """Answer one POST /robot/send as DingTalk does, and keep it.

        ``json_sent`` says whether the request's Content-Type was application/json.
        """
        arrival = _dingtalk_arrival(body)
        with self._lock:
            robot = self._robots.get(token)
            if robot is None:
                answer = DT_NO_TOKEN
            elif not json_sent:
                answer = DT_CONTENT_TYPE
            else:
                answer = self._dingtalk_answer(robot, query, body)
            self._keep(robot.label if robot else token, arrival, answer)
        return dict(answer)

    def receive_wecom(self, key: str, body: Any) -> Answer:
        """Answer one POST /cgi-bin/webhook/send as WeCom does, and keep it."""
        arrival = _wecom_arrival(body)
        with self._lock:
            robot = self._robots.get(key)
            answer = WC_NO_KEY if robot is None else self._wecom_answer(robot, body)
            self._keep(robot.label if robot else key, arrival, answer)
        return dict(answer)

    def _dingtalk_answer(self, robot: Robot, query: Mapping[str, str], body: Any) -> Answer:
        now = self.clock()
        if robot.refusals:
            return robot.refusals.popleft()
        if now < robot.throttled_until:
            return DT_TOO_FAST
        problem = _dingtalk_body_problem(body) or _signature_problem(robot, query, now)
        if problem is None and robot.keyword and robot.keyword not in _all_text(body):
            problem = DT_KEYWORD
        if problem is not None:
            return problem
        if not _take_one(robot, now):
            robot.throttled_until = now + DINGTALK_THROTTLE
            return DT_TOO_FAST
        return OK

    def _wecom_answer(self, robot: Robot, body: Any) -> Answer:
        if robot.refusals:
            return robot.refusals.popleft()
        problem = _wecom_body_problem(body)
        if problem is not None:
            return problem
        return OK if _take_one(robot, self.clock()) else WC_TOO_FAST

    def _keep(self, label: str, arrival: Arrival, answer: Answer) -> None:
        self._messages.append(
            {
                "robot": label,
                "kind": arrival.kind,
                "msgtype": arrival.msgtype,
                "title": arrival.title,
                "text": arrival.text,
                "at": arrival.at,
                "at_ms": int(self.clock() * 1000),
                "answered": dict(answer),
            }
        )


def _take_one(robot: Robot, now: float) -> bool:
    """Count one message in the robot's sliding minute; False if the minute is full."""
    while robot.sent and robot.sent[0] <= now - RATE_WINDOW:
        robot.sent.popleft()
    if len(robot.sent) >= RATE_LIMIT:
        return False
    robot.sent.append(now)
    return True


def dingtalk_sign(secret: str, timestamp: str) -> str:
    """base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}")), before URL encoding."""
    digest = hmac.new(
        secret.encode("utf-8"), f"{timestamp}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def _signature_problem(robot: Robot, query: Mapping[str, str], now: float) -> Answer | None:
    if robot.secret is None:
        return None
    timestamp, sign = query.get("timestamp", ""), query.get("sign", "")
    if not timestamp or not sign:
        return DT_SIGN  # the doc: both must be in the URL, else 310000
    # ASCII digits only: "²".isdigit() is true and int("²") fails.
    if not re.fullmatch(r"[0-9]{1,16}", timestamp):
        return DT_TIMESTAMP
    if abs(now * 1000 - int(timestamp)) > TIMESTAMP_SKEW_MS:
        return DT_TIMESTAMP
    wanted = dingtalk_sign(robot.secret, timestamp)
    return None if hmac.compare_digest(wanted.encode(), sign.encode()) else DT_SIGN


def _dingtalk_body_problem(body: Any) -> Answer | None:
    if not isinstance(body, dict):
        return DT_NO_JSON
    msgtype = body.get("msgtype")
    if not isinstance(msgtype, str) or msgtype not in DT_MSGTYPES:
        return DT_MSGTYPE
    if not isinstance(body.get(msgtype), dict) or not _mentions_are_lists(body.get("at", {})):
        return DT_MSGTYPE
    return None


def _mentions_are_lists(at: Any) -> bool:
    """Whether an "at" is what the page can show: lists of strings, and isAtAll a bool."""
    if not isinstance(at, dict):
        return False
    lists = (at.get(key, []) for key in ("atMobiles", "atUserIds"))
    return all(isinstance(v, list) and all(isinstance(i, str) for i in v) for v in lists) and (
        isinstance(at.get("isAtAll", False), bool)
    )


def _wecom_body_problem(body: Any) -> Answer | None:
    msgtype = body.get("msgtype") if isinstance(body, dict) else None
    if not isinstance(msgtype, str) or msgtype not in WC_MSGTYPES:
        return WC_BAD_BODY
    msgtype = body["msgtype"]
    part = body.get(msgtype)
    if not isinstance(part, dict):
        return WC_BAD_BODY
    content = part.get("content")
    if msgtype not in WC_MAX_BYTES:
        return None
    if not isinstance(content, str) or not content:
        return WC_EMPTY
    limit = WC_MAX_BYTES[msgtype]
    if len(content.encode("utf-8")) > limit:
        return {"errcode": 40058, "errmsg": f"content exceed max length {limit}"}
    return None


def _all_text(body: dict[str, Any]) -> str:
    # Which fields DingTalk searches for a keyword is not documented: every string of the
    # message's own part (title, text, content, buttons) counts here.
    return "\n".join(_strings(body.get(body["msgtype"])))


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _has_its_part(body: Any) -> bool:
    """Whether ``body`` is an object whose msgtype (a string) names an object beside it."""
    msgtype = body.get("msgtype") if isinstance(body, dict) else None
    return isinstance(msgtype, str) and isinstance(body.get(msgtype), dict)


def _dingtalk_arrival(body: Any) -> Arrival:
    if not _has_its_part(body):
        return Arrival("dingtalk")
    msgtype = body["msgtype"]
    part = body[msgtype]
    text = part.get("content") if msgtype == "text" else part.get("text")
    if msgtype == "feedCard":
        text = "\n".join(str(link.get("title", "")) for link in part.get("links") or [])
    at: dict[str, Any] = body["at"] if isinstance(body.get("at"), dict) else {}
    return Arrival("dingtalk", msgtype, str(part.get("title") or ""), str(text or ""), at)


def _wecom_arrival(body: Any) -> Arrival:
    if not _has_its_part(body):
        return Arrival("wecom")
    msgtype = body["msgtype"]
    part = body[msgtype]
    at = {
        name: part[name]
        for name in ("mentioned_list", "mentioned_mobile_list")
        if isinstance(part.get(name), list) and all(isinstance(i, str) for i in part[name])
    }
    return Arrival("wecom", msgtype, "", str(part.get("content") or ""), at)


bp = Blueprint("robots", __name__)


def init_app(app: Flask, robots: Robots) -> None:
    """Serve ``robots`` from ``app``: the two webhooks, the switches and /robots.json."""
    app.extensions["robots"] = robots
    app.register_blueprint(bp)


def _robots() -> Robots:
    robots: Robots = current_app.extensions["robots"]
    return robots


def _json_body() -> Any:
    return request.get_json(force=True, silent=True)


@bp.post("/robot/send")
def dingtalk_send() -> Response:
    """DingTalk's custom robot webhook."""
    token = request.args.get("access_token", "")
    json_sent = request.mimetype == "application/json"
    return jsonify(_robots().receive_dingtalk(token, request.args, _json_body(), json_sent))


@bp.post("/cgi-bin/webhook/send")
def wecom_send() -> Response:
    """WeCom's group robot webhook."""
    return jsonify(_robots().receive_wecom(request.args.get("key", ""), _json_body()))


@bp.post("/sandbox/robots")
def register() -> tuple[Response, int]:
    """Register a robot over HTTP, for a stack in another process (``dingpass dev``)."""
    spec = _json_body()
    if not isinstance(spec, dict) or spec.get("kind") not in ("dingtalk", "wecom"):
        return jsonify(error='give {"kind": "dingtalk" | "wecom", ...}'), 400
    credential = spec.get("token" if spec["kind"] == "dingtalk" else "key")
    if not isinstance(credential, str) or not credential:
        return jsonify(error="a dingtalk robot needs a token, a wecom robot a key"), 400
    name = str(spec.get("name") or "")
    if spec["kind"] == "wecom":
        _robots().add_wecom(credential, name)
    else:
        _robots().add_dingtalk(credential, spec.get("secret"), spec.get("keyword"), name)
    return jsonify(ok=True), 201


@bp.post("/sandbox/robots/refuse")
def refuse() -> tuple[Response, int]:
    """Switch a robot to refuse its next messages with a given error."""
    spec = _json_body()
    if not isinstance(spec, dict) or not isinstance(spec.get("errcode"), int):
        return jsonify(error='give {"robot", "errcode": int, "errmsg", "times": int}'), 400
    times = spec.get("times", 1)
    if not isinstance(times, int):
        return jsonify(error=f"times must be a whole number (got {times!r})"), 400
    robot, errmsg = str(spec.get("robot")), str(spec.get("errmsg", ""))
    try:
        _robots().refuse(robot, spec["errcode"], errmsg, times)
    except UnknownRobotError as error:
        return jsonify(error=error.args[0]), 404
    return jsonify(ok=True), 200


@bp.get("/robots.json")
def robot_messages() -> Response:
    """Every message sent to a robot, as ``Robots.messages()``."""
    return jsonify(_robots().messages())
