"""What the DingTalk sandbox knows: apps, forms, employees, tokens, approval instances and
their records, work notifications, undelivered events, the calls it answered, and faults."""

import itertools
import json
import logging
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from sandbox.forms import FormTemplate, stored_value

log = logging.getLogger(__name__)
TOKEN_SECONDS = 7200
USERS = (
    ("sandbox-approver", "审批机器人"),
    ("manager01", "王经理"),
    ("zhangsan01", "张三"),
    ("lisi02", "李四"),
)
"""The organisation's employees unless told otherwise: (userId, name)."""
APPROVER = "manager01"
"""Who decides an instance in the console unless the request names someone else."""
AGENT_ID = 1000001
"""The app's AgentId unless told otherwise: work notifications must name it."""
THROTTLED = ("Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", "90018")
"""The codes DingTalk refuses a call with when the app calls the API too often: the new
API's (with HTTP 403) and the old API's errcode (with HTTP 200)."""
SAME_NOTICE_SECONDS = 86400.0
"""DingTalk hands the same content to the same user once a day; the rest it answers "ok"
and drops (dingtalk-results.md §5)."""
FORM_COMPONENTS = (
    "申请编号",
    "产品",
    "公司名称",
    "联系人",
    "邮箱",
    "电话",
    "机器特征码",
    "数量",
    "有效期",
    "备注",
)
"""The components (labels) of the sandbox's approval form unless told otherwise: the ones
dingpass's default DINGTALK_FORM_FIELDS fills (written again here: the sandbox imports nothing
of the project, and a test holds the two lists together)."""


@dataclass(frozen=True)
class Record:
    """One entry of an instance's operationRecords: who did what, when."""

    user_id: str
    at_ms: int
    type: str  # START_PROCESS_INSTANCE, EXECUTE_TASK_NORMAL, TERMINATE_PROCESS_INSTANCE, ADD_REMARK
    result: str = "NONE"  # AGREE | REFUSE for EXECUTE_TASK_NORMAL
    remark: str | None = None
    images: tuple[str, ...] = ()


@dataclass
class Instance:
    """One approval instance, as DingTalk keeps it."""

    id: str
    process_code: str
    originator: str
    dept_id: int
    form: list[dict[str, Any]]
    """The values as GetProcessInstance returns them: id, name (label), value, componentType."""
    created_ms: int
    status: str = "RUNNING"  # RUNNING | COMPLETED | TERMINATED
    result: str = ""  # agree | refuse, once COMPLETED
    finished_ms: int | None = None
    form_name: str = ""
    originator_name: str = ""
    approver: str = APPROVER
    """Whose task the instance waits on; whoever decides it takes the task."""
    task_id: int = 0
    records: list[Record] = field(default_factory=list)

    def title(self) -> str:
        """The title DingTalk shows: "<originator's name>提交的<form name>"."""
        who = self.originator_name or self.originator
        return f"{who}提交的{self.form_name or self.process_code}"

    def comments(self) -> list[Record]:
        """The comments added to the instance, oldest first."""
        return [record for record in self.records if record.type == "ADD_REMARK"]


@dataclass(frozen=True)
class Notification:
    """One work notification as one employee received it."""

    user_id: str
    agent_id: int
    msg: dict[str, Any]
    task_id: int
    at: float  # by the sandbox's clock


@dataclass
class Faults:
    """Switches for tests: how many of the next calls or events to spoil, and how.

    A ``*_api`` switch aims its fault at one API (token, start, get, list, failed, open,
    comment, schema, notify); empty, the fault spoils whichever call comes next. On the old
    APIs (failed, notify) a rate limit or server error is an errcode with HTTP 200, as there.
    """

    qps_limit: int | None = None
    """Calls each app may make to each API in one second, as DingTalk enforces it (20 for
    standard-edition organisations); the rest of that second is refused. None: no limit."""
    rate_limit: int = 0
    rate_limit_api: str = ""
    server_error: int = 0
    server_error_api: str = ""
    html_error: int = 0
    """An error answered with a web page, not JSON: a gateway's or a throttle's page."""
    html_error_api: str = ""
    html_error_status: int = 502
    slow_seconds: float = 0.0
    slow_start_seconds: float = 0.0
    """A start request is worked on this late: the instance appears after the caller gave up."""
    drop_events: int = 0
    duplicate_events: int = 0
    callback_unavailable: int = 0
    """HTTP pushes the callback's front door answers 503 (the function never sees them)."""
    callback_answer_lost: int = 0
    """HTTP pushes the function takes whose answer never comes back (a timeout, a cut link)."""

    _taking: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    """Pushes and API calls take faults from several threads: each fault is used once."""

    def switches(self) -> dict[str, object]:
        """Every fault switch and its setting (what a test may set)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "_taking"}

    def take(self, name: str, api: str | None = None) -> bool:
        """Use one of the ``name`` faults, if any is left and it is aimed at ``api``."""
        aimed = getattr(self, f"{name}_api", "")
        if aimed and api is not None and aimed != api:
            return False
        with self._taking:
            left = getattr(self, name)
            if left > 0:
                setattr(self, name, left - 1)
        return bool(left > 0)


@dataclass(frozen=True)
class Call:
    """One API call the sandbox answered: which API, the HTTP status, and the error code of a
    refusal the faults made (an old API's errcode as text), "" otherwise."""

    api: str
    status: int
    code: str = ""


@dataclass(frozen=True)
class Push:
    """One HTTP push attempt of an event, as DingTalk's side saw it."""

    instance_id: str
    event_id: str
    at: float  # when it was sent, by the sandbox's clock
    timestamp: str
    nonce: str
    status: int | None  # the HTTP status answered, None if no answer came
    success: bool  # answered with encrypted "success"


@dataclass
class SandboxState:
    """All state, guarded by one lock: the sandbox serves several threads."""

    app_key: str
    app_secret: str
    forms: dict[str, FormTemplate]
    """Each approval form by its process code."""
    users: dict[str, str] = field(default_factory=lambda: dict(USERS))
    """The organisation's employees: userId to name."""
    agent_id: int = AGENT_ID
    clock: Callable[[], float] = time.time
    tokens: dict[str, float] = field(default_factory=dict)
    instances: dict[str, Instance] = field(default_factory=dict)
    failed_events: list[dict[str, Any]] = field(default_factory=list)
    token_requests: int = 0
    calls: list[Call] = field(default_factory=list)
    admitted: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    """Per (app key, API): the current second and the calls admitted in it (the QPS limit)."""
    asked: list[str] = field(default_factory=list)
    """The instances GetProcessInstance was asked about, in order."""
    pushes: list[Push] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    """Work notifications as their recipients got them, oldest first."""
    faults: Faults = field(default_factory=Faults)
    lock: threading.RLock = field(default_factory=threading.RLock)
    _ids: "itertools.count[int]" = field(default_factory=lambda: itertools.count(1))
    _task_ids: "itertools.count[int]" = field(default_factory=lambda: itertools.count(256271667526))
    forms_made_ms: int = field(init=False)
    """When the forms were published (the sandbox's start)."""

    def __post_init__(self) -> None:
        self.forms_made_ms = self._now_ms()

    def issue_token(self, app_key: str, app_secret: str) -> str | None:
        """A token for the app's credentials (the same one while it lasts), or None."""
        with self.lock:
            self.token_requests += 1
            if (app_key, app_secret) != (self.app_key, self.app_secret):
                return None
            now = self.clock()
            for token, expires in self.tokens.items():
                if expires > now:
                    self.tokens[token] = now + TOKEN_SECONDS  # asking again extends it
                    return token
            token = secrets.token_hex(16)
            self.tokens[token] = now + TOKEN_SECONDS
            return token

    def token_valid(self, token: str) -> bool:
        """Whether ``token`` was issued and has not expired."""
        with self.lock:
            return self.tokens.get(token, 0) > self.clock()

    def token_app(self, token: str) -> str | None:
        """The app key ``token`` was issued to; None for a token the sandbox never issued."""
        with self.lock:
            # The sandbox issues tokens to its one app only.
            return self.app_key if token in self.tokens else None

    def admit(self, app_key: str, api: str) -> bool:
        """Whether the QPS limit lets ``app_key`` call ``api`` now; an admitted call counts.

        Counted in fixed one-second windows of the sandbox's clock, as a per-second limit is;
        a refused call does not use up the budget.
        """
        limit = self.faults.qps_limit
        if limit is None:
            return True
        with self.lock:
            second = int(self.clock())
            window, used = self.admitted.get((app_key, api), (second, 0))
            used = used if window == second else 0
            if used >= limit:
                return False
            self.admitted[app_key, api] = (second, used + 1)
            return True

    def record(self, api: str, status: int, code: str = "") -> None:
        """Note an answered API call (``code``: the error code of a refusal by a fault)."""
        with self.lock:
            self.calls.append(Call(api, status, code))

    def answers(self, api: str) -> list[int]:
        """The HTTP statuses the sandbox answered to calls of ``api``, in order."""
        with self.lock:
            return [call.status for call in self.calls if call.api == api]

    def counts(self) -> Counter[tuple[str, int]]:
        """How many calls of each API were answered with each HTTP status: (api, status)."""
        with self.lock:
            return Counter((call.api, call.status) for call in self.calls)

    def throttled(self) -> Counter[str]:
        """How many calls of each API were refused for calling too often (403 or 90018)."""
        with self.lock:
            return Counter(call.api for call in self.calls if call.code in THROTTLED)

    def pushes_of(self, instance_id: str) -> list[Push]:
        """The HTTP push attempts of an instance's events, in the order they were sent."""
        with self.lock:
            return sorted((p for p in self.pushes if p.instance_id == instance_id), key=_sent_at)

    def start(
        self,
        process_code: str,
        originator: str,
        dept_id: int,
        form: list[dict[str, Any]],
        approver: str = APPROVER,
    ) -> Instance:
        """A new running instance, its values kept as GetProcessInstance returns them."""
        with self.lock:
            number, now = next(self._ids), self._now_ms()
            template = self.forms.get(process_code)
            instance = Instance(
                f"sbx-{number:06d}-{secrets.token_hex(4)}",
                process_code,
                originator,
                dept_id,
                [stored_value(template, value["name"], value["value"]) for value in form],
                now,
                form_name=template.name if template else "",
                originator_name=self.users.get(originator, ""),
                approver=approver,
                task_id=next(self._task_ids),
                records=[Record(originator, now, "START_PROCESS_INSTANCE")],
            )
            self.instances[instance.id] = instance
            return instance

    def decide(self, instance_id: str, action: str, user_id: str | None = None) -> Instance | None:
        """Approve, refuse or terminate a running instance; None if it is not running.

        The approver decides unless ``user_id`` is given; a termination is the originator's.
        """
        with self.lock:
            instance = self.instances.get(instance_id)
            if instance is None or instance.status != "RUNNING":
                return None
            instance.status = "TERMINATED" if action == "terminate" else "COMPLETED"
            instance.result = {"approve": "agree", "refuse": "refuse"}.get(action, "")
            instance.finished_ms = self._now_ms()
            if action == "terminate":
                actor = user_id or instance.originator
                record = Record(actor, instance.finished_ms, "TERMINATE_PROCESS_INSTANCE")
            else:
                instance.approver = user_id or instance.approver
                record = Record(
                    instance.approver,
                    instance.finished_ms,
                    "EXECUTE_TASK_NORMAL",
                    instance.result.upper(),
                )
            instance.records.append(record)
            return instance

    def comment(
        self, instance_id: str, user_id: str, text: str, images: tuple[str, ...] = ()
    ) -> Instance | None:
        """Add a comment to an instance (in any status); None if there is no such instance."""
        with self.lock:
            instance = self.instances.get(instance_id)
            if instance is not None:
                record = Record(user_id, self._now_ms(), "ADD_REMARK", remark=text, images=images)
                instance.records.append(record)
            return instance

    def notify(self, user_ids: list[str], msg: dict[str, Any]) -> int:
        """Hand a work notification to each user; its task id.

        A user who got the same content in the last day gets nothing, and the answer is the
        same: that is what DingTalk does.
        """
        with self.lock:
            task_id, now = next(self._task_ids), self.clock()
            content = json.dumps(msg, ensure_ascii=False, sort_keys=True)
            for user_id in user_ids:
                if self._had_lately(user_id, content, now):
                    log.info("sandbox dropped a work notification: %s had it today", user_id)
                    continue
                self.notifications.append(Notification(user_id, self.agent_id, msg, task_id, now))
            return task_id

    def _had_lately(self, user_id: str, content: str, now: float) -> bool:
        return any(
            n.user_id == user_id
            and now - n.at < SAME_NOTICE_SECONDS
            and json.dumps(n.msg, ensure_ascii=False, sort_keys=True) == content
            for n in self.notifications
        )

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def take_failed(self, limit: int = 200) -> tuple[list[dict[str, Any]], bool]:
        """Up to ``limit`` failed events; reading them clears them, as DingTalk does."""
        with self.lock:
            batch, self.failed_events = (
                self.failed_events[:limit],
                self.failed_events[limit:],
            )
            return batch, bool(self.failed_events)


def _sent_at(push: Push) -> float:
    return push.at
