"""Taking in changes from callers, idempotently, and answering where they stand."""

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from backend.changes.model import Change, ChangeStatus
from backend.changes.types import ChangeType, Plan, PlannedStep, plan
from backend.changes.validation import message, validate
from backend.cloud.plugins.base import Plugins
from backend.exceptions import BadRequest, Conflict, Message, NotFound, ValidationError
from backend.jobs import queue
from backend.storage import changes as store
from backend.storage.database import Database
from backend.subjects import Subject, SubjectType

STEP_KIND = "change_step"
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
    ) -> None:
        self.database, self.types, self.plugins = database, types, plugins
        self.clock, self.kick = clock, kick

    def submit(self, app_id: int, body: Any) -> Submitted:
        """Record the change ``body`` asks for and queue its steps; the first one, if repeated.

        Two requests are the same when their type and spec, as checked (defaults filled in),
        are: a spec that spells out a default asks for what one that leaves it out does.
        """
        request_id = _request_id(body)
        checked = self._plan(body)
        digest = request_hash({"type": body["type"], "spec": checked.spec})
        earlier = self._earlier(app_id, request_id, digest)
        if earlier is not None:
            return Submitted(earlier, True)
        new = NewChange(app_id, request_id, digest, body["type"], checked)
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

    def _plan(self, body: dict[str, Any]) -> Plan:
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
    """A checked request, to be recorded."""

    app_id: int | None
    request_id: str
    request_hash: str
    type: str
    plan: Plan
    status: ChangeStatus = ChangeStatus.PLANNED


def record(connection: Connection, new: NewChange, now: datetime) -> int | None:
    """Record a change, its steps and their jobs in the caller's transaction; None if taken."""
    change_id = store.insert_change(
        connection,
        app_id=new.app_id,
        request_id=new.request_id,
        request_hash=new.request_hash,
        type_=new.type,
        spec=new.plan.spec,
        status=new.status,
        now=now,
    )
    if change_id is not None:
        _record_steps(connection, change_id, new.plan.steps, now)
    return change_id


def _record_steps(
    connection: Connection, change_id: int, steps: list[PlannedStep], now: datetime
) -> None:
    """Each step with its job, which depends on the jobs of the steps it needs."""
    subject = Subject(SubjectType.CHANGE, str(change_id))
    job_ids: dict[str, int] = {}
    for position, step in enumerate(steps):
        job_id = queue.enqueue(
            connection,
            STEP_KIND,
            subject,
            now,
            part=step.name,
            payload={"step": step.name},
            depends_on=[job_ids[name] for name in step.needs],
        )
        if job_id is None:
            raise RuntimeError(f"change {change_id} step {step.name}: its job was recorded already")
        job_ids[step.name] = job_id
        store.insert_step(
            connection,
            change_id,
            position,
            name=step.name,
            type=step.type,
            spec=step.spec,
            inputs=step.inputs,
            needs=list(step.needs),
            job_id=job_id,
        )


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
    unknown = sorted(set(body) - {"type", "request_id", "spec"})
    if unknown:
        raise ValidationError(
            {
                name: message(
                    "未知字段；可用：type, request_id, spec。",
                    "Unknown field; the known ones are type, request_id and spec.",
                )
                for name in unknown
            }
        )
    return request_id
