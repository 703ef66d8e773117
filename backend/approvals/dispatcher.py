"""One transaction per approval event: record it once, move the application, record the work.

HTTP callbacks, Stream mode and the reconciler all come through here. The unique key on
(instance id, event type) makes any repeated delivery a no-op, and the conditional
update (only from pending) means only one delivery can ever move an application. An event
for an instance no application knows yet is held, never dropped: the job it records finds
out whose the instance is, and the event is applied when an application links it.
"""

import functools
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select, update

from backend.applications.status import ApplicationStatus
from backend.approvals import change_decisions
from backend.approvals.events import ApprovalEvent
from backend.approvals.outcomes import Outcome as Outcome  # callers know it from here
from backend.changes.forms import ChangeForms
from backend.changes.names import TAKE_REQUEST_KIND
from backend.config import Config
from backend.fulfillment.names import ADOPT_INSTANCE, ISSUE_LICENSE, SEND_REFUSAL_MAIL
from backend.jobs import queue
from backend.storage import changes as change_store
from backend.storage.applications import by_instance, mark_pending, transition
from backend.storage.database import RETRIED_AT_ONCE, Database
from backend.storage.schema import approval_events
from backend.storage.unique import insert_unless_present
from backend.subjects import Subject

Decision = tuple[ApplicationStatus, str]
"""The status a decision moves a pending application to, and the kind of job it records."""
DECISIONS: dict[tuple[str, str | None], Decision] = {
    ("finish", "agree"): (ApplicationStatus.APPROVED, ISSUE_LICENSE),
    ("finish", "refuse"): (ApplicationStatus.REFUSED, SEND_REFUSAL_MAIL),
    ("terminate", None): (ApplicationStatus.TERMINATED, SEND_REFUSAL_MAIL),
}
"""(event type, result) -> what the application does."""


class Dispatcher:
    """Applies approval events to applications, exactly once in effect."""

    def __init__(
        self,
        database: Database,
        clock: Callable[[], datetime],
        kick: Callable[[], None] | None = None,
        process_codes: Collection[str] = (),
        request_forms: Collection[str] = (),
    ) -> None:
        self.database, self.clock, self.kick = database, clock, kick
        self.request_forms = frozenset(request_forms)
        """The forms employees start changes on: their instances are not ours, yet concern us."""
        self.process_codes = frozenset(process_codes) | self.request_forms
        """The forms whose instances are ours to act on; empty: every form's."""

    def dispatch(self, event: ApprovalEvent) -> Outcome:
        """Record ``event`` and act on it, all in one transaction.

        Run again after a deadlock with a runner's transition of the same application, or
        MariaDB's snapshot isolation refusing a row changed since it read it, rather than
        failing the callback for DingTalk to push again 10 s later; not after a lock wait,
        which took 5 s of DingTalk's 1.5 already.
        """
        work = functools.partial(self._record, event)
        outcome = self.database.run(work, retried=RETRIED_AT_ONCE)
        if outcome in KICKING and self.kick is not None:
            self.kick()  # the work it recorded is committed: run it now, not at the next timer tick
        return outcome

    def _record(self, event: ApprovalEvent, connection: Connection) -> Outcome:
        now = self.clock()
        event_id = _claim(connection, event, now)
        if event_id is None:
            return Outcome.DUPLICATE
        # An instance already linked is ours whatever its form: the form may have left the
        # configuration (renamed, made anew) while an application or a change waits on it.
        ours = self._ours(event) or _linked(connection, event.instance_id)
        applied = self._apply(connection, event, now) if ours else NOT_OURS
        _record_outcome(connection, event_id, applied)
        if applied.outcome is Outcome.UNKNOWN_INSTANCE:
            ask_whose(connection, event.instance_id, now, event.process_code)
        return applied.outcome

    def _apply(self, connection: Connection, event: ApprovalEvent, now: datetime) -> "Applied":
        """What the event does, to an application, a change, or an employee's request."""
        applied = _apply(connection, event, now)
        if applied.outcome is Outcome.UNKNOWN_INSTANCE and event.process_code in self.request_forms:
            return _requested(connection, event, now)
        return applied

    def _ours(self, event: ApprovalEvent) -> bool:
        code = event.process_code
        return not self.process_codes or code is None or code in self.process_codes


def dispatcher_for(
    config: Config,
    database: Database,
    clock: Callable[[], datetime],
    kick: Callable[[], None] | None = None,
) -> Dispatcher:
    """The dispatcher of approval events, acting on the configured forms' instances only."""
    return dispatcher_of(database, clock, kick, config.dingtalk_process_code, config.change_forms)


def dispatcher_of(
    database: Database,
    clock: Callable[[], datetime],
    kick: Callable[[], None] | None,
    license_form: str | None,
    changes: ChangeForms,
) -> Dispatcher:
    """The dispatcher acting on the license form's and the change forms' instances."""
    forms = [license_form] if license_form else []
    forms += [form.process_code for form in changes.approvals]
    requests = [form.process_code for form in changes.requests]
    return Dispatcher(database, clock, kick, process_codes=forms, request_forms=requests)


def link(connection: Connection, application_id: int, instance_id: str, now: datetime) -> bool:
    """submitted -> pending with its instance, and the events held for it applied; False if
    the application had moved on (another instance was linked first)."""
    if not mark_pending(connection, application_id, instance_id, now):
        return False
    apply_held(connection, instance_id, now)
    return True


def apply_held(connection: Connection, instance_id: str, now: datetime) -> int:
    """Apply the events held for ``instance_id`` to its application; how many moved it.

    An event can arrive before its application knows its instance (DingTalk answered the
    start too late, or the answer was lost): it is held, not dropped, and applied here, in
    the transaction that links the instance, or by the reconciler.
    """
    moved = 0
    for event_id, event in _held(connection, instance_id):
        if not _take_held(connection, event_id):
            continue  # applied by another runner (an adopt job, the reconciler) meanwhile
        applied = _apply(connection, event, now)
        _record_outcome(connection, event_id, applied)
        moved += applied.outcome is Outcome.MOVED
    return moved


def release_held(connection: Connection, instance_id: str, outcome: "Outcome") -> None:
    """Stop holding the events of an instance found not to be ours, or a duplicate."""
    connection.execute(
        update(approval_events)
        .where(
            approval_events.c.instance_id == instance_id,
            approval_events.c.outcome == Outcome.UNKNOWN_INSTANCE,
        )
        .values(outcome=outcome)
    )


def _take_held(connection: Connection, event_id: int) -> bool:
    """Claim one held event for this transaction: a conditional update, one winner."""
    taken = connection.execute(
        update(approval_events)
        .where(
            approval_events.c.id == event_id,
            approval_events.c.outcome == Outcome.UNKNOWN_INSTANCE,
        )
        .values(outcome="")
    )
    return taken.rowcount == 1


def decided(connection: Connection, instance_ids: Collection[str]) -> set[str]:
    """Those of ``instance_ids`` whose decision (finish or terminate) is on record."""
    if not instance_ids:
        return set()
    query = select(approval_events.c.instance_id).where(
        approval_events.c.instance_id.in_(list(instance_ids)),
        approval_events.c.event_type.in_(("finish", "terminate")),
    )
    return set(connection.execute(query).scalars())


def held_instances(connection: Connection) -> list[str]:
    """Instances with events held, oldest first."""
    query = (
        select(approval_events.c.instance_id)
        .where(approval_events.c.outcome == Outcome.UNKNOWN_INSTANCE)
        .group_by(approval_events.c.instance_id)
        .order_by(func.min(approval_events.c.id))
    )
    return list(connection.execute(query).scalars())


def _held(connection: Connection, instance_id: str) -> list[tuple[int, ApprovalEvent]]:
    table = approval_events.c
    query = (
        select(table.id, table.event_type, table.result, table.transport)
        .where(table.instance_id == instance_id, table.outcome == Outcome.UNKNOWN_INSTANCE)
        .order_by(table.id)
    )
    return [
        (event_id, ApprovalEvent(instance_id, kind, result, transport))
        for event_id, kind, result, transport in connection.execute(query)
    ]


def _record_outcome(connection: Connection, event_id: int, applied: "Applied") -> None:
    connection.execute(
        update(approval_events)
        .where(approval_events.c.id == event_id)
        .values(
            outcome=applied.outcome.value,
            application_id=applied.application_id,
            change_id=applied.change_id,
        )
    )


def _linked(connection: Connection, instance_id: str) -> bool:
    """Whether an application or a change has the instance (a plain read: a link made long
    before the form left the configuration is what this is for)."""
    return (
        by_instance(connection, instance_id) is not None
        or change_store.by_instance(connection, instance_id) is not None
    )


def ask_whose(
    connection: Connection, instance_id: str, now: datetime, process_code: str | None = None
) -> None:
    """Record (or make due again) the work of finding out whose the instance is: an
    application's, or a change's (``process_code``, when the event named its form)."""
    payload = {"instance_id": instance_id}
    if process_code is not None:
        payload["process_code"] = process_code
    queue.enqueue(connection, ADOPT_INSTANCE, None, now, part=instance_id, payload=payload)
    queue.due_now(connection, ADOPT_INSTANCE, None, now, part=instance_id, again=True)


def _claim(connection: Connection, event: ApprovalEvent, now: datetime) -> int | None:
    """Record the event under its business key; None if it was recorded before."""
    row = {
        "instance_id": event.instance_id,
        "event_type": event.kind,
        "result": event.result,
        "transport": event.transport,
        "outcome": "",
        "payload": event.payload_json(),
        "received_at": now,
    }
    return insert_unless_present(connection, approval_events, row)


@dataclass(frozen=True)
class Applied:
    """What an event did, and to which application or change."""

    outcome: Outcome
    application_id: int | None = None
    change_id: int | None = None


NOT_OURS = Applied(Outcome.NOT_OURS)
KICKING = (Outcome.MOVED, Outcome.UNKNOWN_INSTANCE, Outcome.REQUESTED)
"""Outcomes that recorded work: a runner is woken for it."""


def _apply(connection: Connection, event: ApprovalEvent, now: datetime) -> Applied:
    """What the event does to the application or change its instance belongs to."""
    # A locking read: on MySQL it sees a link committed after this transaction began, where a
    # plain read would see the snapshot and hold an event whose application is known.
    found = by_instance(connection, event.instance_id, lock=True)
    if found is None:
        change = change_store.by_instance(connection, event.instance_id, lock=True)
        if change is None:
            return Applied(Outcome.UNKNOWN_INSTANCE)
        return Applied(change_decisions.decide(connection, change, event, now), None, change.id)
    decision = DECISIONS.get((event.kind, event.result if event.kind == "finish" else None))
    if decision is None:
        return Applied(Outcome.NO_DECISION, found.id)
    if not _move(connection, found.id, decision, now):
        return Applied(Outcome.NOT_PENDING, found.id)
    return Applied(Outcome.MOVED, found.id)


def _requested(connection: Connection, event: ApprovalEvent, now: datetime) -> Applied:
    """An employee's request: agreed, the job that makes its change; else nothing to do."""
    if (event.kind, event.result) != ("finish", "agree"):
        return Applied(Outcome.NO_DECISION)
    payload = {"instance_id": event.instance_id, "process_code": event.process_code}
    queue.enqueue(connection, TAKE_REQUEST_KIND, None, now, part=event.instance_id, payload=payload)
    return Applied(Outcome.REQUESTED)


def _move(connection: Connection, application_id: int, decision: Decision, now: datetime) -> bool:
    """pending -> the decided status, with its work recorded; False if it was not pending."""
    status, work = decision
    if not transition(connection, application_id, ApplicationStatus.PENDING, status, now):
        return False
    queue.enqueue(connection, work, Subject.application(application_id), now)
    return True
