"""The job vocabulary: statuses, retry policy, and what a handler may answer."""

import json
import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from backend.compat import StrEnum


class JobStatus(StrEnum):
    """Where a job stands; a column that can be queried."""

    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"  # started something outside; re-checks its condition later
    SUCCEEDED = "succeeded"
    FAILED = "failed"


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
    """A claimed job, as its handler sees it."""

    id: int
    kind: str
    application_id: int
    payload: dict[str, Any]
    attempts: int
    version: int
    condition: dict[str, Any] | None = None

    @classmethod
    def from_row(cls, row: Any) -> "Job":
        """From a jobs row."""
        condition = json.loads(row.condition) if row.condition else None
        return cls(
            row.id,
            row.kind,
            row.application_id,
            json.loads(row.payload or "{}"),
            row.attempts,
            row.version,
            condition,
        )


@dataclass(frozen=True)
class Done:
    """The job's work is finished."""


@dataclass(frozen=True)
class Wait:
    """The job started something outside; run it again after ``check_in`` with ``condition``."""

    condition: dict[str, Any] = field(default_factory=dict)
    check_in: timedelta = timedelta(seconds=30)


Outcome = Done | Wait
DEFAULT_RETRY = Retry()
