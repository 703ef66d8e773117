"""The change vocabulary: statuses, a change and its steps as recorded, as callers see them."""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping

from backend.compat import StrEnum


class ChangeStatus(StrEnum):
    """Where a change stands."""

    PLANNED = "planned"
    AWAITING_APPROVAL = "awaiting_approval"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUSED = "refused"
    CANCELLED = "cancelled"


UNFINISHED = (ChangeStatus.PLANNED, ChangeStatus.AWAITING_APPROVAL, ChangeStatus.RUNNING)


class StepStatus(StrEnum):
    """Where one step stands: ``waiting`` means created, not ready yet."""

    PLANNED = "planned"
    RUNNING = "running"
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


OPEN_STEPS = (StepStatus.PLANNED, StepStatus.RUNNING, StepStatus.WAITING)


@dataclass(frozen=True)
class Step:
    """One resource of a change, as recorded."""

    id: int
    change_id: int
    name: str
    position: int
    type: str
    spec: dict[str, Any]
    inputs: dict[str, Any]  # param -> {"value": v} or {"step": name, "key": result key}
    needs: list[str]
    status: StepStatus
    job_id: int | None
    resource_id: str | None
    results: dict[str, Any] | None
    checks: int
    last_error: str | None
    started_at: datetime | None
    finished_at: datetime | None
    deleted_at: datetime | None
    attempts: int = 0

    @classmethod
    def from_row(cls, row: RowMapping, attempts: int = 0, job_error: str | None = None) -> "Step":
        """From a change_steps row (and its job's attempts and last error, while it retries)."""
        return cls(
            id=row["id"],
            change_id=row["change_id"],
            name=row["name"],
            position=row["position"],
            type=row["type"],
            spec=json.loads(row["spec"]),
            inputs=json.loads(row["inputs"] or "{}"),
            needs=json.loads(row["needs"] or "[]"),
            status=StepStatus(row["status"]),
            job_id=row["job_id"],
            resource_id=row["resource_id"],
            results=json.loads(row["results"]) if row["results"] else None,
            checks=row["checks"],
            last_error=row["last_error"] or job_error,
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            deleted_at=row["deleted_at"],
            attempts=attempts,
        )

    def view(self) -> dict[str, Any]:
        """The step as the API shows it."""
        return {
            "name": self.name,
            "type": self.type,
            "status": self.status,
            "needs": self.needs,
            "resource_id": self.resource_id,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "results": self.results,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "deleted_at": _iso(self.deleted_at),
        }


@dataclass(frozen=True)
class Change:
    """A change as recorded, with its steps in plan order."""

    id: int
    public_id: str
    app_id: int | None
    request_id: str
    request_hash: str
    type: str
    spec: dict[str, Any]
    status: ChangeStatus
    error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    steps: tuple[Step, ...] = ()
    origin: str = "api"  # api | dingtalk
    requester: str | None = None  # the employee's userId, for a change from DingTalk
    callback_url: str | None = None
    approval: "Approval | None" = None

    @classmethod
    def from_row(cls, row: RowMapping, steps: tuple[Step, ...] = ()) -> "Change":
        """From a changes row."""
        return cls(
            id=row["id"],
            public_id=row["public_id"],
            app_id=row["app_id"],
            request_id=row["request_id"],
            request_hash=row["request_hash"],
            type=row["type"],
            spec=json.loads(row["spec"]),
            status=ChangeStatus(row["status"]),
            error=row["error"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            finished_at=row["finished_at"],
            steps=steps,
            origin=row["origin"],
            requester=row["requester"],
            callback_url=row["callback_url"],
            approval=Approval.from_row(row),
        )

    def resources(self) -> list[dict[str, Any]]:
        """Exactly the resources this change created, and whether each still exists."""
        return [
            {
                "step": step.name,
                "type": step.type,
                "id": step.resource_id,
                "exists": step.deleted_at is None,
            }
            for step in self.steps
            if step.resource_id is not None
        ]

    def summary(self) -> dict[str, Any]:
        """The change without its steps: what a listing shows."""
        return {
            "id": self.public_id,
            "type": self.type,
            "request_id": self.request_id,
            "status": self.status,
            "error": self.error,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "finished_at": _iso(self.finished_at),
        }

    def view(self) -> dict[str, Any]:
        """The change as the progress endpoint shows it."""
        return {
            **self.summary(),
            "spec": self.spec,
            "steps": [step.view() for step in self.steps],
            "results": {s.name: s.results for s in self.steps if s.results is not None},
            "resources": self.resources(),
            "origin": self.origin,
            "requester": self.requester,
            "approval": None if self.approval is None else self.approval.view(),
            "callback_url": self.callback_url,
        }

    @property
    def ended(self) -> bool:
        """Whether the change is over, one way or another."""
        return self.status not in UNFINISHED


@dataclass(frozen=True)
class Approval:
    """The DingTalk approval of a change: the instance, and the approver's decision."""

    process_code: str
    instance_id: str | None
    decision: str  # pending | agree | refuse | terminate
    decided_at: datetime | None
    requested_at: datetime | None = None  # a start sent and not answered: in doubt

    @classmethod
    def from_row(cls, row: RowMapping) -> "Approval | None":
        """From a changes row; None for a change that needed no approval."""
        if row["approval_form"] is None:
            return None
        return cls(
            row["approval_form"],
            row["instance_id"],
            row["approval"] or "pending",
            row["decided_at"],
            row["instance_requested_at"],
        )

    def view(self) -> dict[str, Any]:
        """The approval as the progress endpoint shows it."""
        return {
            "process_code": self.process_code,
            "instance_id": self.instance_id,
            "decision": self.decision,
            "decided_at": _iso(self.decided_at),
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")
