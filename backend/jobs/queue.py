"""The jobs table as a queue: record, claim under a lease, finish, retry, fail.

Claiming is an optimistic conditional update on the version column, so any number of
runners on one MySQL/MariaDB (or SQLite) never run one job at the same time; a runner
that dies leaves its lease to expire, and the job is taken again.
"""

import json
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, exists, func, insert, or_, select, update
from sqlalchemy.exc import DBAPIError

from backend.jobs.model import Job, JobStatus, JsonObject, Retry, dedupe_key
from backend.storage.database import rolled_back
from backend.storage.schema import job_dependencies, jobs
from backend.storage.unique import insert_new, insert_unless_present
from backend.subjects import Subject

CANDIDATES = 16
_prerequisite = jobs.alias("prerequisite")
ConnectionFactory = Callable[[], AbstractContextManager[Connection]]
"""Database.transaction: each call a connection in a transaction of its own."""


def enqueue(
    connection: Connection,
    kind: str,
    subject: Subject | None,
    now: datetime,
    *,
    part: str | None = None,
    payload: JsonObject | None = None,
    depends_on: Collection[int] = (),
    new_subject: bool = False,
) -> int | None:
    """Record a job in the caller's transaction; None if its dedupe key was recorded already.

    By default a kind has one job per subject; several jobs of one kind for one subject (one
    change opening several resources) each name a ``part`` of their key (see dedupe_key).
    ``new_subject``: the subject was made in this very transaction, so no job of it can be
    recorded yet: the insert expects no clash, and reuses one statement (insert_new).
    """
    row = {
        "kind": kind,
        "subject_type": subject and subject.type,
        "subject_id": subject and subject.id,
        "dedupe_key": dedupe_key(kind, subject, part),
        "status": JobStatus.QUEUED,
        "attempts": 0,
        "run_after": now,
        "created_at": now,
        "tries_since": now,
        "updated_at": now,
        "payload": json.dumps(payload or {}),
        "version": 0,
    }
    job_id = (
        insert_new(connection, jobs, row)
        if new_subject
        else insert_unless_present(connection, jobs, row)
    )
    if job_id is not None and depends_on:
        edges = [{"job_id": job_id, "depends_on": other} for other in sorted(set(depends_on))]
        connection.execute(insert(job_dependencies), edges)
    return job_id


def claim(
    connection_factory: ConnectionFactory,
    runner: str,
    now: datetime,
    lease: timedelta,
    only: int | None = None,
) -> Job | None:
    """Take one due job under a lease, or None.

    The search for due jobs and the attempt on the oldest share one transaction, so a job is
    taken with one commit: the take's update checks the version the search read. Should
    another runner have taken that job meanwhile, the update changes nothing, or on MariaDB
    with innodb_snapshot_isolation (on by default from 11.6.2) it rolls the transaction back;
    either way each later candidate is then tried in a short transaction of its own: on MySQL
    a refused update keeps its row locked until the commit, which would hold up the runner
    that has the job.
    """
    candidates: list[tuple[int, int, int]] = []
    try:
        with connection_factory() as connection:
            candidates = _due(connection, now, only)
            job = _take(connection, candidates[0], runner, now, lease) if candidates else None
    except DBAPIError as err:
        if not rolled_back(err):
            raise
        job = None  # the oldest changed since the search: the next candidates, as below
    for candidate in candidates[1:]:
        if job is not None:
            break
        with connection_factory() as connection:
            job = _take(connection, candidate, runner, now, lease)
    return job


def _take(
    connection: Connection,
    candidate: tuple[int, int, int],
    runner: str,
    now: datetime,
    lease: timedelta,
) -> Job | None:
    """Lease the job if it is still as ``candidate`` saw it: its (id, version, attempts)."""
    job_id, version, attempts = candidate
    # A run of attempts begins at its first: a job that waited its turn (for the jobs it
    # depends on, or for a resource) has not been trying meanwhile.
    first = {"tries_since": now} if attempts == 0 else {}
    taken = connection.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.version == version)
        .values(
            status=JobStatus.RUNNING,
            leased_by=runner,
            lease_until=now + lease,
            attempts=attempts + 1,
            version=version + 1,
            updated_at=now,
            **first,
        )
    )
    return _job(connection, job_id) if taken.rowcount == 1 else None


def _due(connection: Connection, now: datetime, only: int | None) -> list[tuple[int, int, int]]:
    """(id, version, attempts) of jobs due now whose prerequisites all succeeded, oldest first."""
    blocked = exists().where(
        job_dependencies.c.job_id == jobs.c.id,
        job_dependencies.c.depends_on == _prerequisite.c.id,
        _prerequisite.c.status != JobStatus.SUCCEEDED,
    )
    runnable = or_(
        and_(jobs.c.status.in_([JobStatus.QUEUED, JobStatus.WAITING]), jobs.c.run_after <= now),
        and_(jobs.c.status == JobStatus.RUNNING, jobs.c.lease_until < now),  # its runner died
    )
    query = (
        select(jobs.c.id, jobs.c.version, jobs.c.attempts)
        .where(runnable, ~blocked)
        .order_by(jobs.c.run_after, jobs.c.id)
    )
    query = query.where(jobs.c.id == only) if only is not None else query.limit(CANDIDATES)
    return [(job_id, version, attempts) for job_id, version, attempts in connection.execute(query)]


def next_due(connection: Connection, now: datetime) -> datetime | None:
    """When the next job that waits for its time (a backoff, a condition) falls due, if any."""
    waiting = and_(jobs.c.status.in_([JobStatus.QUEUED, JobStatus.WAITING]), jobs.c.run_after > now)
    return connection.execute(select(func.min(jobs.c.run_after)).where(waiting)).scalar()


def finish(connection: Connection, job: Job, now: datetime) -> bool:
    """Mark a claimed job succeeded; False if its lease was lost to another runner meanwhile."""
    return _settle(
        connection, job, now, status=JobStatus.SUCCEEDED, finished_at=now, last_error=None
    )


def cancelled(connection: Connection, job: Job, now: datetime) -> bool:
    """Mark a claimed job cancelled: its work is no longer wanted."""
    return _settle(connection, job, now, status=JobStatus.CANCELLED, finished_at=now)


def wait(
    connection: Connection, job: Job, now: datetime, condition: JsonObject, check_in: timedelta
) -> bool:
    """Park a job that started something outside until it is time to re-check ``condition``."""
    return _settle(
        connection,
        job,
        now,
        status=JobStatus.WAITING,
        condition=json.dumps(condition),
        run_after=now + check_in,
        attempts=job.attempts - 1,  # waiting is not a failed attempt
    )


def failed_attempt(
    connection: Connection, job: Job, now: datetime, error: str, retry: Retry
) -> JobStatus | None:
    """Record a failed run: queued again after a backoff, or failed once attempts are spent.

    None when the run's lease ran out and another runner took the job: nothing is recorded.
    """
    if retry.gives_up(job.attempts, now - job.tries_since):
        values: dict[str, Any] = {"status": JobStatus.FAILED, "finished_at": now}
    else:
        values = {"status": JobStatus.QUEUED, "run_after": now + retry.delay(job.attempts)}
    return values["status"] if _settle(connection, job, now, last_error=error, **values) else None


def _settle(connection: Connection, job: Job, now: datetime, **values: Any) -> bool:
    changed = connection.execute(
        update(jobs)
        .where(
            jobs.c.id == job.id, jobs.c.version == job.version, jobs.c.status == JobStatus.RUNNING
        )
        .values(leased_by=None, lease_until=None, version=job.version + 1, updated_at=now, **values)
    )
    return changed.rowcount == 1


def cancel(connection: Connection, job_ids: Collection[int], now: datetime) -> list[int]:
    """Cancel those of ``job_ids`` that are not running or finished; the ids cancelled.

    A running job is left to its runner: cancelling it under the runner's feet would hide
    what it did (a resource it created).
    """
    open_ = jobs.c.status.in_([JobStatus.QUEUED, JobStatus.WAITING])
    cancel = update(jobs).values(
        status=JobStatus.CANCELLED, finished_at=now, version=jobs.c.version + 1, updated_at=now
    )
    # One by one: a job a runner claimed meanwhile is not cancelled, and not said to be.
    return [
        job_id
        for job_id in sorted(set(job_ids))
        if connection.execute(cancel.where(jobs.c.id == job_id, open_)).rowcount == 1
    ]


def requeue(connection: Connection, job_id: int, now: datetime) -> bool:
    """Give a failed job a fresh set of attempts (`dingpass jobs retry`)."""
    changed = connection.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.status == JobStatus.FAILED)
        .values(
            status=JobStatus.QUEUED,
            attempts=0,
            tries_since=now,
            run_after=now,
            finished_at=None,
            version=jobs.c.version + 1,
            updated_at=now,
        )
    )
    return changed.rowcount == 1


def listing(connection: Connection, status: JobStatus | None = None) -> list[Job]:
    """Jobs, newest first, optionally of one status."""
    query = select(jobs).order_by(jobs.c.id.desc())
    if status is not None:
        query = query.where(jobs.c.status == status)
    return [Job.from_row(row) for row in connection.execute(query).mappings()]


def dependencies(connection: Connection, job_id: int) -> list[int]:
    """The jobs that must succeed before job ``job_id`` runs."""
    query = select(job_dependencies.c.depends_on).where(job_dependencies.c.job_id == job_id)
    return sorted(connection.execute(query).scalars())


def due_now(
    connection: Connection,
    kind: str,
    subject: Subject | None,
    now: datetime,
    part: str | None = None,
    again: bool = False,
) -> int | None:
    """Make the job of ``kind`` about ``subject`` (and ``part``) due now, recording it if missing.

    A failed job gets a fresh set of attempts, and so does a succeeded one when ``again`` (work
    that is safe to repeat, asked for anew). None if the job is running (only the runner that
    holds it may act on it) or succeeded.
    """
    enqueue(connection, kind, subject, now, part=part)
    # A locking read: the job as it stands, not as the caller's snapshot had it, so that an
    # attempt a runner made meanwhile does not make the update below miss.
    job = _job_by_key(connection, dedupe_key(kind, subject, part), lock=True)
    revivable = {JobStatus.QUEUED, JobStatus.WAITING, JobStatus.FAILED}
    if job.status not in revivable | ({JobStatus.SUCCEEDED} if again else set()):
        return None
    values: dict[str, Any] = {
        "status": JobStatus.QUEUED,
        "run_after": now,
        "version": job.version + 1,
        "updated_at": now,
    }
    if job.status in (JobStatus.FAILED, JobStatus.SUCCEEDED):
        values |= {"attempts": 0, "finished_at": None, "tries_since": now}
    changed = connection.execute(
        update(jobs).where(jobs.c.id == job.id, jobs.c.version == job.version).values(values)
    )
    return job.id if changed.rowcount == 1 else None


def _job(connection: Connection, job_id: int) -> Job:
    return Job.from_row(
        connection.execute(select(jobs).where(jobs.c.id == job_id)).mappings().one()
    )


def _job_by_key(connection: Connection, key: str, lock: bool = False) -> Job:
    query = select(jobs).where(jobs.c.dedupe_key == key)
    if lock:
        query = query.with_for_update()
    return Job.from_row(connection.execute(query).mappings().one())
