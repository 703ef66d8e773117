"""The job vocabulary: subjects, statuses, retry policy, and what a handler may answer."""

import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import RowMapping

from backend.compat import StrEnum
from backend.subjects import Subject

JsonObject = dict[str, Any]
"""A job's payload or condition: JSON in the database, a dict in Python."""


class JobStatus(StrEnum):
    """Where a job stands; a column that can be queried."""

    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"  # started something outside; re-checks its condition later
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"  # its work is no longer wanted (a change whose earlier step failed)


KIND_LENGTH, KEY_LENGTH = 32, 191
"""The columns' sizes: a longer kind or key would be cut or refused by MySQL, not by SQLite."""


def dedupe_key(kind: str, subject: Subject | None, part: str | None = None) -> str:
    """The key that makes one piece of work recorded twice recorded once.

    A kind has one job per subject, unless its jobs name a ``part`` each (one change opening
    several resources); a job about nothing must name one. The kind and subject always lead,
    so two kinds' keys never meet.
    """
    if subject is None and part is None:
        raise ValueError(f"a {kind} job without a subject needs a part of its own key")
    about = f"{subject.type}:{subject.id}" if subject is not None else "-"
    key = f"{kind}:{about}" + (f":{part}" if part is not None else "")
    if len(kind) > KIND_LENGTH or len(key) > KEY_LENGTH:
        raise ValueError(
            f"job kind {kind!r} (at most {KIND_LENGTH}) or key {key!r} (at most {KEY_LENGTH}) "
            "is too long: shorten the kind's name or the key's part"
        )
    return key


@dataclass(frozen=True)
class Retry:
    """Exponential backoff with jitter, up to ``max_attempts`` runs, or for as long as ``horizon``.

    A count suits a job whose failures are its own; a job that waits for an outside service
    (a mail server, DingTalk) keeps trying for a horizon longer than that service's outages.
    """

    max_attempts: int | None = 5
    first: timedelta = timedelta(seconds=2)
    cap: timedelta = timedelta(minutes=10)
    horizon: timedelta | None = None

    def gives_up(self, attempts: int, age: timedelta) -> bool:
        """Whether a job that has failed ``attempts`` runs, trying for ``age``, should stop."""
        if self.max_attempts is not None and attempts >= self.max_attempts:
            return True
        return self.horizon is not None and age >= self.horizon

    def describe(self) -> str:
        """For people: how long this policy keeps trying."""
        if self.max_attempts is None and self.horizon is not None:
            return f"of those in {self.horizon.total_seconds() / 3600:g} h"
        return f"of {self.max_attempts}"

    def delay(self, attempts: int, rng: random.Random | None = None) -> timedelta:
        """How long to wait after the ``attempts``-th failed run: doubling, capped, jittered."""
        # The exponent is capped first: 2**46 of anything is past what a timedelta holds.
        ceiling: timedelta = min(self.cap, self.first * 2 ** min(attempts - 1, 30))
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
    created_at: datetime
    tries_since: datetime  # when this run of attempts began: recorded, or revived by a person
    condition: JsonObject | None = None
    last_error: str | None = None

    @classmethod
    def from_row(cls, row: RowMapping) -> "Job":
        """From a jobs row."""
        subject = Subject(row["subject_type"], row["subject_id"]) if row["subject_type"] else None
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
            created_at=row["created_at"],
            tries_since=row["tries_since"] or row["created_at"],
            condition=condition,
            last_error=row["last_error"],
        )


@dataclass(frozen=True)
class Done:
    """The job's work is finished.

    ``then``: the id of a job it recorded to carry the same work on (the license's mail), which
    the runner takes next, before older work: under a burst of approvals each customer's mail
    then follows their own license, not every license of the burst.
    """

    then: int | None = None


@dataclass(frozen=True)
class Wait:
    """The job started something outside; run it again after ``check_in`` with ``condition``."""

    condition: JsonObject = field(default_factory=dict)
    check_in: timedelta = timedelta(seconds=30)


@dataclass(frozen=True)
class Cancelled:
    """The job's work is no longer wanted (its change failed meanwhile); it ends cancelled."""


Outcome = Done | Wait | Cancelled
DEFAULT_RETRY = Retry()
OUTAGE_RETRY = Retry(max_attempts=None, cap=timedelta(minutes=5), horizon=timedelta(hours=24))
"""For jobs that wait on an outside service: every five minutes at most, for a day."""
