"""One transaction per approval event: record it once, move the application, record the work.

HTTP callbacks, Stream mode and the reconciler all come through here. The unique key on
(instance id, event type) makes any repeated delivery a no-op, and the conditional
update (only from pending) means only one delivery can ever move an application.
"""

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, update

from backend.applications.status import ApplicationStatus
from backend.approvals.events import ApprovalEvent
from backend.compat import StrEnum
from backend.fulfillment.licenses import ISSUE_LICENSE
from backend.fulfillment.mails import SEND_REFUSAL_MAIL
from backend.jobs import queue
from backend.storage.applications import by_instance, transition
from backend.storage.database import Database
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


class Outcome(StrEnum):
    """What a delivery did; recorded with the event and logged."""

    MOVED = "moved"
    DUPLICATE = "duplicate"
    UNKNOWN_INSTANCE = "unknown_instance"
    NO_DECISION = "no_decision"
    NOT_PENDING = "not_pending"


class Dispatcher:
    """Applies approval events to applications, exactly once in effect."""

    def __init__(
        self,
        database: Database,
        clock: Callable[[], datetime],
        kick: Callable[[], None] | None = None,
    ) -> None:
        self.database, self.clock, self.kick = database, clock, kick

    def dispatch(self, event: ApprovalEvent) -> Outcome:
        """Record ``event`` and act on it, all in one transaction."""
        with self.database.transaction() as connection:
            now = self.clock()
            event_id = _claim(connection, event, now)
            if event_id is None:
                return Outcome.DUPLICATE
            outcome, application_id = _apply(connection, event, now)
            connection.execute(
                update(approval_events)
                .where(approval_events.c.id == event_id)
                .values(outcome=outcome.value, application_id=application_id)
            )
        if outcome is Outcome.MOVED and self.kick is not None:
            self.kick()  # the work it recorded is committed: run it now, not at the next timer tick
        return outcome


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


def _apply(
    connection: Connection, event: ApprovalEvent, now: datetime
) -> tuple[Outcome, int | None]:
    application = by_instance(connection, event.instance_id)
    if application is None:
        return Outcome.UNKNOWN_INSTANCE, None
    decision = DECISIONS.get((event.kind, event.result if event.kind == "finish" else None))
    if decision is None:
        return Outcome.NO_DECISION, application.id
    if not _move(connection, application.id, decision, now):
        return Outcome.NOT_PENDING, application.id
    return Outcome.MOVED, application.id


def _move(connection: Connection, application_id: int, decision: Decision, now: datetime) -> bool:
    """pending -> the decided status, with its work recorded; False if it was not pending."""
    status, work = decision
    if not transition(connection, application_id, ApplicationStatus.PENDING, status, now):
        return False
    queue.enqueue(connection, work, Subject.application(application_id), now)
    return True
