"""One transaction per approval event: record it once, move the application, record the work.

HTTP callbacks, Stream mode and the reconciler all come through here. The unique key on
(instance id, event type) makes any repeated delivery a no-op, and the conditional
update (only from pending) means only one delivery can ever move an application.
"""

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, select, update

from backend.approvals.events import ApprovalEvent
from backend.compat import StrEnum
from backend.jobs import queue
from backend.storage.applications import transition
from backend.storage.database import Database
from backend.storage.schema import applications, approval_events
from backend.storage.unique import insert_unless_present

PENDING = "pending"
# (kind, result) -> (new application status, work to record)
DECISIONS: dict[tuple[str, str | None], tuple[str, str]] = {
    ("finish", "agree"): ("approved", "issue_license"),
    ("finish", "refuse"): ("refused", "send_refusal_mail"),
    ("terminate", None): ("terminated", "send_refusal_mail"),
}


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
    result = insert_unless_present(connection, approval_events, row)
    if result is None:
        return None
    (event_id,) = result.inserted_primary_key or (None,)
    return None if event_id is None else int(event_id)


def _apply(
    connection: Connection, event: ApprovalEvent, now: datetime
) -> tuple[Outcome, int | None]:
    found = connection.execute(
        select(applications.c.id).where(applications.c.instance_id == event.instance_id)
    ).scalar()
    if found is None:
        return Outcome.UNKNOWN_INSTANCE, None
    decision = DECISIONS.get((event.kind, event.result if event.kind == "finish" else None))
    if decision is None:
        return Outcome.NO_DECISION, found
    if not _move(connection, found, decision, now):
        return Outcome.NOT_PENDING, found
    return Outcome.MOVED, found


def _move(
    connection: Connection,
    application_id: int,
    decision: tuple[str, str],
    now: datetime,
) -> bool:
    """pending -> the decided status, with its work recorded; False if it was not pending."""
    status, work = decision
    if not transition(connection, application_id, PENDING, status, now):
        return False
    queue.enqueue(connection, work, application_id, now)
    return True
