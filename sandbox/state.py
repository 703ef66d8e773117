"""What the DingTalk sandbox knows: apps, forms, tokens, approval instances, undelivered events,
the calls it answered, and faults."""

import itertools
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

TOKEN_SECONDS = 7200
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


@dataclass
class Instance:
    """One approval instance, as DingTalk keeps it."""

    id: str
    process_code: str
    originator: str
    dept_id: int
    form: list[dict[str, Any]]
    created_ms: int
    status: str = "RUNNING"  # RUNNING | COMPLETED | TERMINATED
    result: str = ""  # agree | refuse, once COMPLETED
    finished_ms: int | None = None

    def title(self) -> str:
        """The title DingTalk would show: the first form value."""
        return f"License application {self.form[0]['value']}" if self.form else self.id


@dataclass
class Faults:
    """Switches for tests: how many of the next calls or events to spoil, and how.

    A ``*_api`` switch aims its fault at one API (token, start, get, list, failed, open);
    empty, the fault spoils whichever call comes next.
    """

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
    """One API call the sandbox answered: which API, and the HTTP status it answered."""

    api: str
    status: int


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
    forms: dict[str, frozenset[str]]
    """Each approval form's process code and the names of its components."""
    clock: Callable[[], float] = time.time
    tokens: dict[str, float] = field(default_factory=dict)
    instances: dict[str, Instance] = field(default_factory=dict)
    failed_events: list[dict[str, Any]] = field(default_factory=list)
    token_requests: int = 0
    calls: list[Call] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)
    """The instances GetProcessInstance was asked about, in order."""
    pushes: list[Push] = field(default_factory=list)
    faults: Faults = field(default_factory=Faults)
    lock: threading.RLock = field(default_factory=threading.RLock)
    _ids: "itertools.count[int]" = field(default_factory=lambda: itertools.count(1))

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

    def record(self, api: str, status: int) -> None:
        """Note an answered API call."""
        with self.lock:
            self.calls.append(Call(api, status))

    def answers(self, api: str) -> list[int]:
        """The HTTP statuses the sandbox answered to calls of ``api``, in order."""
        with self.lock:
            return [call.status for call in self.calls if call.api == api]

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
    ) -> Instance:
        """A new running instance."""
        with self.lock:
            number = next(self._ids)
            instance = Instance(
                f"sbx-{number:06d}-{secrets.token_hex(4)}",
                process_code,
                originator,
                dept_id,
                form,
                int(self.clock() * 1000),
            )
            self.instances[instance.id] = instance
            return instance

    def decide(self, instance_id: str, action: str) -> Instance | None:
        """Approve, refuse or terminate a running instance; None if it is not running."""
        with self.lock:
            instance = self.instances.get(instance_id)
            if instance is None or instance.status != "RUNNING":
                return None
            instance.status = "TERMINATED" if action == "terminate" else "COMPLETED"
            instance.result = {"approve": "agree", "refuse": "refuse"}.get(action, "")
            instance.finished_ms = int(self.clock() * 1000)
            return instance

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
