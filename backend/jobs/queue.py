"""The jobs table as a queue: record, claim under a lease, finish, retry, fail.

Claiming is an optimistic conditional update on the version column, so any number of
runners on one MySQL/MariaDB (or SQLite) never run one job at the same time; a runner
that dies leaves its lease to expire, and the job is taken again.
"""

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, or_, select, update

from backend.jobs.model import DEFAULT_RETRY, Job, JobStatus, Retry
from backend.storage.schema import jobs
from backend.storage.unique import insert_unless_present

CANDIDATES = 16


def enqueue(
    connection: Connection,
    kind: str,
    application_id: int,
    now: datetime,
    *,
    payload: dict[str, Any] | None = None,
    depends_on: int | None = None,
    retry: Retry = DEFAULT_RETRY,
) -> int | None:
    """Record a job in the caller's transaction; None if this work was recorded already."""
    row = {
        "kind": kind,
        "application_id": application_id,
        "status": JobStatus.QUEUED,
        "attempts": 0,
        "run_after": now,
        "created_at": now,
        "updated_at": now,
        "payload": json.dumps(payload or {}),
        "depends_on": depends_on,
        "max_attempts": retry.max_attempts,
        "version": 0,
    }
    result = insert_unless_present(connection, jobs, row)
    if result is None:
        return None
    (job_id,) = result.inserted_primary_key or (None,)
    return None if job_id is None else int(job_id)


def claim(
    connection_factory: Any,
    runner: str,
    now: datetime,
    lease: timedelta,
    only: int | None = None,
) -> Job | None:
    """Take one due job under a lease, or None. Each attempt is its own short transaction."""
    with connection_factory() as connection:
        candidates = connection.execute(_due(now, only)).all()
    for job_id, version in candidates:
        with connection_factory() as connection:
            taken = connection.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.version == version)
                .values(
                    status=JobStatus.RUNNING,
                    leased_by=runner,
                    lease_until=now + lease,
                    attempts=jobs.c.attempts + 1,
                    version=version + 1,
                    updated_at=now,
                )
            )
            if taken.rowcount == 1:
                row = connection.execute(select(jobs).where(jobs.c.id == job_id)).one()
                return Job.from_row(row)
    return None


def _due(now: datetime, only: int | None) -> Any:
    done = select(jobs.c.id).where(jobs.c.status == JobStatus.SUCCEEDED).scalar_subquery()
    ready = or_(jobs.c.depends_on.is_(None), jobs.c.depends_on.in_(done))
    runnable = or_(
        and_(
            jobs.c.status.in_([JobStatus.QUEUED, JobStatus.WAITING]),
            jobs.c.run_after <= now,
        ),
        and_(jobs.c.status == JobStatus.RUNNING, jobs.c.lease_until < now),  # its runner died
    )
    query = (
        select(jobs.c.id, jobs.c.version)
        .where(runnable, ready)
        .order_by(jobs.c.run_after, jobs.c.id)
    )
    return query.where(jobs.c.id == only) if only is not None else query.limit(CANDIDATES)


def finish(connection: Connection, job: Job, now: datetime) -> bool:
    """Mark a claimed job succeeded; False if its lease was lost to another runner meanwhile."""
    return _settle(
        connection,
        job,
        now,
        status=JobStatus.SUCCEEDED,
        finished_at=now,
        last_error=None,
    )


def wait(
    connection: Connection,
    job: Job,
    now: datetime,
    condition: dict[str, Any],
    check_in: timedelta,
) -> bool:
    """Park a job that started something outside until it is time to re-check ``condition``."""
    return _settle(
        connection,
        job,
        now,
        status=JobStatus.WAITING,
        condition=json.dumps(condition),
        run_after=now + check_in,
        attempts=job.attempts - 1,
    )


def failed_attempt(
    connection: Connection, job: Job, now: datetime, error: str, retry: Retry
) -> JobStatus:
    """Record a failed run: queued again after a backoff, or failed once attempts are spent."""
    max_attempts = (
        connection.execute(select(jobs.c.max_attempts).where(jobs.c.id == job.id)).scalar()
        or retry.max_attempts
    )
    if job.attempts >= max_attempts:
        _settle(
            connection,
            job,
            now,
            status=JobStatus.FAILED,
            last_error=error,
            finished_at=now,
        )
        return JobStatus.FAILED
    _settle(
        connection,
        job,
        now,
        status=JobStatus.QUEUED,
        last_error=error,
        run_after=now + retry.delay(job.attempts),
    )
    return JobStatus.QUEUED


def _settle(connection: Connection, job: Job, now: datetime, **values: Any) -> bool:
    changed = connection.execute(
        update(jobs)
        .where(
            jobs.c.id == job.id,
            jobs.c.version == job.version,
            jobs.c.status == JobStatus.RUNNING,
        )
        .values(
            leased_by=None,
            lease_until=None,
            version=job.version + 1,
            updated_at=now,
            **values,
        )
    )
    return changed.rowcount == 1


def requeue(connection: Connection, job_id: int, now: datetime) -> bool:
    """Give a failed job a fresh set of attempts (`dingpass jobs retry`)."""
    changed = connection.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.status == JobStatus.FAILED)
        .values(
            status=JobStatus.QUEUED,
            attempts=0,
            run_after=now,
            finished_at=None,
            version=jobs.c.version + 1,
            updated_at=now,
        )
    )
    return changed.rowcount == 1


def listing(connection: Connection, status: JobStatus | None = None) -> list[Any]:
    """Jobs, newest first, optionally of one status."""
    query = select(jobs).order_by(jobs.c.id.desc())
    if status is not None:
        query = query.where(jobs.c.status == status)
    return list(connection.execute(query).all())


def due_now(connection: Connection, kind: str, application_id: int, now: datetime) -> int | None:
    """Make an application's job of ``kind`` due now, recording it if missing; its id.

    A failed job gets a fresh set of attempts. None if the job is running or succeeded:
    only the runner that holds it may act on it.
    """
    enqueue(connection, kind, application_id, now)
    row = connection.execute(
        select(jobs.c.id, jobs.c.status, jobs.c.version).where(
            jobs.c.kind == kind, jobs.c.application_id == application_id
        )
    ).one()
    if row.status not in (JobStatus.QUEUED, JobStatus.WAITING, JobStatus.FAILED):
        return None
    values: dict[str, Any] = {
        "status": JobStatus.QUEUED,
        "run_after": now,
        "version": row.version + 1,
        "updated_at": now,
    }
    if row.status == JobStatus.FAILED:
        values |= {"attempts": 0, "finished_at": None}
    changed = connection.execute(
        update(jobs).where(jobs.c.id == row.id, jobs.c.version == row.version).values(values)
    )
    return int(row.id) if changed.rowcount == 1 else None
