"""What an approver's decision does to a change that waits for it.

Agreed, the change is planned and its steps' jobs are queued; refused or withdrawn, it ends
(``refused``/``cancelled``) with nothing made, and its caller is told. A conditional update
from ``awaiting_approval`` lets only one delivery of a decision move it.
"""

from datetime import datetime

from sqlalchemy import Connection

from backend.approvals.events import ApprovalEvent
from backend.approvals.outcomes import Outcome
from backend.changes import outcome
from backend.changes.model import OPEN_STEPS, Change, ChangeStatus, StepStatus
from backend.changes.queueing import queue_steps
from backend.storage import changes as store

DECISIONS: dict[tuple[str, str | None], tuple[ChangeStatus, str]] = {
    ("finish", "agree"): (ChangeStatus.PLANNED, "agree"),
    ("finish", "refuse"): (ChangeStatus.REFUSED, "refuse"),
    ("terminate", None): (ChangeStatus.CANCELLED, "terminate"),
}
"""(event type, result) -> the status a waiting change moves to, and the decision noted."""
ERRORS = {
    ChangeStatus.REFUSED: "the approver refused it in DingTalk: nothing was created",
    ChangeStatus.CANCELLED: "its approval was withdrawn in DingTalk: nothing was created",
}


def decide(connection: Connection, change: Change, event: ApprovalEvent, now: datetime) -> Outcome:
    """Apply ``event`` to ``change``; the dispatcher's outcome (moved, not pending, ...)."""
    found = DECISIONS.get((event.kind, event.result if event.kind == "finish" else None))
    if found is None:
        return Outcome.NO_DECISION
    status, decision = found
    ended = status != ChangeStatus.PLANNED
    moved = store.set_change(
        connection,
        change.id,
        now,
        only_if=(ChangeStatus.AWAITING_APPROVAL,),
        status=status,
        approval=decision,
        decided_at=event.finished_at or now,
        **({"finished_at": now, "error": ERRORS[status]} if ended else {}),
    )
    if not moved:
        return Outcome.NOT_PENDING
    if ended:
        cancel_steps(connection, change, now)
        outcome.ended(connection, change, status, now)
    else:
        queue_steps(connection, change.id, now)
    return Outcome.MOVED


def cancel_steps(connection: Connection, change: Change, now: datetime) -> None:
    """Cancel the steps of a change that will not run."""
    for step in change.steps:
        store.set_step(
            connection,
            step.id,
            only_if=OPEN_STEPS,
            status=StepStatus.CANCELLED,
            last_error="cancelled: the change was not approved",
            finished_at=now,
        )
