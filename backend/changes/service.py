"""Taking in changes from callers, idempotently, and answering where they stand."""

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import SplitResult, urlsplit

from sqlalchemy import Connection

from backend.changes.forms import ChangeForms
from backend.changes.model import Change, ChangeStatus
from backend.changes.names import OPEN_APPROVAL_KIND
from backend.changes.queueing import queue_steps
from backend.changes.types import ChangeType, Plan, PlannedStep, plan
from backend.changes.validation import message, validate
from backend.cloud.plugins.base import Plugins
from backend.exceptions import BadRequest, Conflict, Message, NotFound, ValidationError
from backend.jobs import queue
from backend.storage import changes as store
from backend.storage.database import Database
from backend.subjects import Subject

CALLBACK_URL_LENGTH = 1024
NO_FORMS = ChangeForms()
FIELDS = frozenset({"type", "request_id", "spec", "callback_url"})
REQUEST_ID = re.compile(r"[\x21-\x7e]{1,64}")


@dataclass(frozen=True)
class Submitted:
    """A change as taken in; ``replayed`` when the caller had sent it before."""

    change: Change
    replayed: bool


class Changes:
    """The changes API's work, apart from HTTP."""

    def __init__(
        self,
        database: Database,
        types: Mapping[str, ChangeType],
        plugins: Plugins,
        clock: Callable[[], datetime],
        kick: Callable[[], None] = lambda: None,
        forms: ChangeForms = NO_FORMS,
    ) -> None:
        self.database, self.types, self.plugins = database, types, plugins
        self.clock, self.kick, self.forms = clock, kick, forms

    def submit(self, app_id: int, body: Any) -> Submitted:
        """Record the change ``body`` asks for and queue its steps; the first one, if repeated.

        Two requests are the same when their type and spec, as checked (defaults filled in),
        are: a spec that spells out a default asks for what one that leaves it out does.
        """
        request_id = _request_id(body)
        callback_url = _callback_url(body)
        checked = self.checked_plan(body)
        request = {"type": body["type"], "spec": checked.spec}
        if callback_url is not None:  # absent, the hash is what it was before callbacks
            request["callback_url"] = callback_url
        digest = request_hash(request)
        earlier = self._earlier(app_id, request_id, digest)
        if earlier is not None:
            return Submitted(earlier, True)
        status, more = self._gate(body["type"])
        more = {**more, "callback_url": callback_url}
        new = NewChange(app_id, request_id, digest, body["type"], checked, status, more)
        with self.database.transaction() as connection:
            change_id = record(connection, new, self.clock())
            change = None if change_id is None else store.by_id(connection, change_id)
        if change is None:  # another request with the same id was recorded a moment ago
            earlier = self._earlier(app_id, request_id, digest)
            if earlier is None:
                raise RuntimeError(f"request {request_id} was taken, yet its change is gone")
            return Submitted(earlier, True)
        self.kick()
        return Submitted(change, False)

    def get(self, app_id: int | None, public_id: str) -> Change:
        """The change ``public_id`` of caller ``app_id`` (None: anyone's); NotFound otherwise."""
        with self.database.transaction() as connection:
            change = store.by_public_id(connection, public_id)
        if change is None or (app_id is not None and change.app_id != app_id):
            # Another caller's change is as absent as one that never was.
            raise NotFound("找不到该变更。", f"There is no change {public_id} of yours.")
        return change

    def _earlier(self, app_id: int, request_id: str, digest: str) -> Change | None:
        with self.database.transaction() as connection:
            earlier = store.by_request(connection, app_id, request_id)
        if earlier is not None and earlier.request_hash != digest:
            raise Conflict(
                f"request_id {request_id} 已用于另一个请求内容。",
                f"request_id {request_id} was used for a different request: send a new "
                "request_id for a new change, or the same body to read the first one back.",
            )
        return earlier

    def _gate(self, change_type: str) -> tuple[ChangeStatus, dict[str, Any]]:
        """Whether a change of ``change_type`` waits for an approval, and on which form."""
        form = self.forms.approval_for(change_type)
        if form is None:
            return ChangeStatus.PLANNED, {}
        return ChangeStatus.AWAITING_APPROVAL, {
            "approval_form": form.process_code,
            "approval": "pending",
        }

    def checked_plan(self, body: dict[str, Any]) -> Plan:
        """The plan, each step's spec checked as its plugin declares (a composite's own)."""
        planned = plan(self.types, body)
        checked: list[PlannedStep] = []
        errors: dict[str, Message] = {}
        for step in planned.steps:
            plugin = self.plugins.get(step.type)
            if plugin is None:
                raise LookupError(
                    f"a change type planned a {step.type} step, which no plugin makes"
                )
            own = {k: v for k, v in plugin.parameters.items() if k not in step.inputs}
            spec, problems = validate(step.spec, own)
            errors |= {_field(step, name): text for name, text in problems.items()}
            checked.append(replace(step, spec=spec))
        if errors:
            raise ValidationError(errors)
        return Plan(planned.spec, checked)


def _field(step: PlannedStep, name: str) -> str:
    """The field of the request an error of ``step``'s parameter ``spec.<name>`` is about."""
    param = name.removeprefix("spec.")
    origin = step.origin.get(param)
    return f"spec.{origin}" if origin else f"steps.{step.name}.{param}"


@dataclass(frozen=True)
class NewChange:
    """A checked request, to be recorded; ``more``: who asked and how, its approval."""

    app_id: int | None
    request_id: str
    request_hash: str
    type: str
    plan: Plan
    status: ChangeStatus = ChangeStatus.PLANNED
    more: Mapping[str, Any] = field(default_factory=dict)


def record(connection: Connection, new: NewChange, now: datetime) -> int | None:
    """Record a change and its steps in the caller's transaction, with its steps' jobs, or
    (awaiting its approval) the job that opens the approval; None if it was recorded before."""
    change_id = store.insert_change(
        connection,
        app_id=new.app_id,
        request_id=new.request_id,
        request_hash=new.request_hash,
        type_=new.type,
        spec=new.plan.spec,
        status=new.status,
        now=now,
        **new.more,
    )
    if change_id is None:
        return None
    for position, step in enumerate(new.plan.steps):
        store.insert_step(
            connection,
            change_id,
            position,
            name=step.name,
            type=step.type,
            spec=step.spec,
            inputs=step.inputs,
            needs=list(step.needs),
        )
    if new.status == ChangeStatus.AWAITING_APPROVAL:
        queue.enqueue(connection, OPEN_APPROVAL_KIND, Subject.change(change_id), now)
    else:
        queue_steps(connection, change_id, now)
    return change_id


def request_hash(request: Mapping[str, Any]) -> str:
    """What makes two requests under one request id the same: their JSON, canonically."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _request_id(body: Any) -> str:
    if not isinstance(body, dict):
        raise BadRequest("请求内容应为 JSON 对象。", "The request body must be a JSON object.")
    try:  # JSON's \ud800 escapes make strings no database (and no cloud) can store
        json.dumps(body, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise BadRequest(
            "请求内容含有无效的 Unicode 字符（孤立的代理项）。",
            "The request holds text that is not valid Unicode (a lone surrogate escape such as "
            "\\ud800): send UTF-8 text.",
        ) from None
    request_id = body.get("request_id")
    if not isinstance(request_id, str) or not REQUEST_ID.fullmatch(request_id):
        raise ValidationError(
            {
                "request_id": message(
                    "必填：调用方自己的请求编号，1–64 个可见 ASCII 字符。",
                    "Required: your own id for this request, 1–64 visible ASCII characters; "
                    "sending it again returns the same change.",
                )
            }
        )
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise ValidationError(
            {
                name: message(
                    "未知字段；可用：type, request_id, spec, callback_url。",
                    "Unknown field; the known ones are type, request_id, spec and callback_url.",
                )
                for name in unknown
            }
        )
    return request_id


def _parts(url: Any) -> SplitResult | None:
    """The URL's parts, or None for one Python cannot read (``http://[::1``, port 99999)."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- reading it checks it
    except ValueError:
        return None
    return parts


def _callback_url(body: dict[str, Any]) -> str | None:
    """The caller's URL told of the change's end, if it gave one: http(s), absolute."""
    url = body.get("callback_url")
    if url is None:
        return None
    parts = _parts(url)
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or len(url) > CALLBACK_URL_LENGTH
        or not url.isprintable()
        or " " in url
    ):
        raise ValidationError(
            {
                "callback_url": message(
                    f"应为 http(s):// 开头的完整地址，最长 {CALLBACK_URL_LENGTH} 个字符。",
                    "An absolute http:// or https:// URL of at most "
                    f"{CALLBACK_URL_LENGTH} characters: dingpass POSTs the change to it, "
                    "signed, when it ends.",
                )
            }
        )
    return str(url)
