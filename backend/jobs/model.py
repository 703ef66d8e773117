"""The job vocabulary: subjects, statuses, retry policy, and what a handler may answer."""

import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import RowMapping

from backend.compat import StrEnum
from backend.subjects import Subject, SubjectType

JsonObject = dict[str, Any]
"""A job's payload or condition: JSON in the database, a dict in Python."""


class JobStatus(StrEnum):
    """Where a job stands; a column that can be queried."""

    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"  # started something outside; re-checks its condition later
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def dedupe_key(kind: str, subject: Subject | None) -> str:
    """The key of the one job of ``kind`` about ``subject``, when a kind has one per subject."""
    if subject is None:
        raise ValueError(f"a {kind} job without a subject needs a dedupe key of its own")
    return f"{kind}:{subject.type}:{subject.id}"


@dataclass(frozen=True)
class Retry:
    """Exponential backoff with jitter, up to ``max_attempts`` runs in all."""

    max_attempts: int = 5
    first: timedelta = timedelta(seconds=2)
    cap: timedelta = timedelta(minutes=10)

    def delay(self, attempts: int, rng: random.Random | None = None) -> timedelta:
        """How long to wait after the ``attempts``-th failed run: doubling, capped, jittered."""
        ceiling: timedelta = min(self.cap, self.first * 2 ** (attempts - 1))
        jitter: float = (rng or random).random()  # noqa: S311 -- jitter, not secrecy
        return ceiling * (0.5 + jitter / 2)


@dataclass(frozen=True)
class Job:
    """A job as it is recorded; a handler gets the one it runs."""

    id: int
    kind: str
    subject: Subject | None
    dedupe_key: str
    status: JobStatus
    payload: JsonObject
    attempts: int
    version: int
    run_after: datetime
    condition: JsonObject | None = None
    last_error: str | None = None

    @classmethod
    def from_row(cls, row: RowMapping) -> "Job":
        """From a jobs row."""
        subject = (
            Subject(SubjectType(row["subject_type"]), row["subject_id"])
            if row["subject_type"]
            else None
        )
        condition = json.loads(row["condition"]) if row["condition"] else None
        return cls(
            id=row["id"],
            kind=row["kind"],
            subject=subject,
            dedupe_key=row["dedupe_key"],
            status=JobStatus(row["status"]),
            payload=json.loads(row["payload"] or "{}"),
            attempts=row["attempts"],
            version=row["version"],
            run_after=row["run_after"],
            condition=condition,
            last_error=row["last_error"],
        )


@dataclass(frozen=True)
class Done:
    """The job's work is finished."""


@dataclass(frozen=True)
class Wait:
    """The job started something outside; run it again after ``check_in`` with ``condition``."""

    condition: JsonObject = field(default_factory=dict)
    check_in: timedelta = timedelta(seconds=30)


Outcome = Done | Wait
DEFAULT_RETRY = Retry()
