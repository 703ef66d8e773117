"""Changes and their steps in the database (SQLAlchemy Core)."""

import json
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from backend.changes.model import OPEN_STEPS, Change, ChangeStatus, Step, StepStatus
from backend.storage.schema import change_steps, changes, jobs
from backend.storage.unique import insert_unless_present


def new_public_id() -> str:
    """A change's id for callers: random, so ClientTokens made from it are never shared."""
    return f"chg-{secrets.token_hex(8)}"


def insert_change(
    connection: Connection,
    *,
    app_id: int | None,
    request_id: str,
    request_hash: str,
    type_: str,
    spec: dict[str, Any],
    status: ChangeStatus,
    now: datetime,
    **more: Any,
) -> int | None:
    """Record a change (``more``: who asked and how, its approval); None if the caller
    recorded one under ``request_id`` already, or one came from the same DingTalk instance."""
    return insert_unless_present(
        connection,
        changes,
        {
            "public_id": new_public_id(),
            "app_id": app_id,
            "request_id": request_id,
            "request_hash": request_hash,
            "type": type_,
            "spec": json.dumps(spec, ensure_ascii=False),
            "status": status,
            "created_at": now,
            "updated_at": now,
            **more,
        },
    )


def insert_step(connection: Connection, change_id: int, position: int, **values: Any) -> int:
    """Record one planned step of a change; its id."""
    row = {
        "change_id": change_id,
        "position": position,
        "status": StepStatus.PLANNED,
        "checks": 0,
        **values,
    }
    for name in ("spec", "inputs", "needs"):
        row[name] = json.dumps(row[name], ensure_ascii=False)
    step_id = insert_unless_present(connection, change_steps, row)
    if step_id is None:
        raise ValueError(f"change {change_id} has two steps called {values['name']!r}")
    return step_id


def by_request(connection: Connection, app_id: int, request_id: str) -> Change | None:
    """The change ``app_id`` recorded under ``request_id``, if any."""
    query = select(changes).where(changes.c.app_id == app_id, changes.c.request_id == request_id)
    row = connection.execute(query).mappings().first()
    return None if row is None else _with_steps(connection, row)


def by_public_id(connection: Connection, public_id: str) -> Change | None:
    """The change called ``public_id``, with its steps."""
    row = (
        connection.execute(select(changes).where(changes.c.public_id == public_id))
        .mappings()
        .first()
    )
    return None if row is None else _with_steps(connection, row)


def by_instance(connection: Connection, instance_id: str, lock: bool = False) -> Change | None:
    """The change that DingTalk instance ``instance_id`` gates or came from, if any.

    ``lock``: a locking read, which on MySQL sees a link committed after the transaction began.
    """
    query = select(changes).where(changes.c.instance_id == instance_id)
    row = connection.execute(query.with_for_update() if lock else query).mappings().first()
    return None if row is None else _with_steps(connection, row)


def awaiting_approval(connection: Connection, before: datetime) -> list[str]:
    """Instances of changes awaiting their approval since before ``before``, oldest first."""
    query = (
        select(changes.c.instance_id)
        .where(
            changes.c.status == ChangeStatus.AWAITING_APPROVAL,
            changes.c.instance_id.is_not(None),
            changes.c.created_at < before,
        )
        .order_by(changes.c.id)
    )
    return [str(instance_id) for instance_id in connection.execute(query).scalars()]


def mark_requested(
    connection: Connection, change_id: int, at: datetime, before: datetime | None
) -> bool:
    """Note a start of the change's approval about to be sent; False if another runner's
    start came first (the mark is not the one read, ``before``)."""
    query = update(changes).where(changes.c.id == change_id, changes.c.instance_id.is_(None))
    mark = changes.c.instance_requested_at
    query = query.where(mark.is_(None) if before is None else mark == before)
    return connection.execute(query.values(instance_requested_at=at)).rowcount == 1


def unmark_requested(connection: Connection, change_id: int, at: datetime) -> None:
    """Clear the mark ``at`` of a start DingTalk refused (or never received): nothing is in
    doubt. A later mark stays: a runner that took the job over since has sent its own start."""
    mark = changes.c.instance_requested_at
    query = update(changes).where(changes.c.id == change_id, mark == at)
    connection.execute(query.values(instance_requested_at=None))


def link_instance(connection: Connection, change_id: int, instance_id: str) -> bool:
    """Give the change its approval instance; False if it has one already."""
    query = update(changes).where(changes.c.id == change_id, changes.c.instance_id.is_(None))
    return connection.execute(query.values(instance_id=instance_id)).rowcount == 1


def set_step_job(connection: Connection, step_id: int, job_id: int) -> None:
    """Record the job that carries out a step (queued once its change is approved)."""
    connection.execute(
        update(change_steps).where(change_steps.c.id == step_id).values(job_id=job_id)
    )


def by_id(connection: Connection, change_id: int, lock: bool = False) -> Change:
    """The change numbered ``change_id``, with its steps.

    ``lock``: a locking read, which on MySQL sees a write committed after the transaction began;
    under snapshot isolation a row changed since the snapshot fails the transaction (1020).
    """
    query = select(changes).where(changes.c.id == change_id)
    row = connection.execute(query.with_for_update() if lock else query).mappings().one()
    return _with_steps(connection, row)


def listing(
    connection: Connection,
    *,
    app_id: int | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[Change]:
    """Changes, newest first, without their steps; ``before_id`` pages on."""
    query = select(changes).order_by(changes.c.id.desc()).limit(limit)
    if app_id is not None:
        query = query.where(changes.c.app_id == app_id)
    if status is not None:
        query = query.where(changes.c.status == status)
    if since is not None:
        query = query.where(changes.c.created_at >= since)
    if until is not None:
        query = query.where(changes.c.created_at < until)
    if before_id is not None:
        query = query.where(changes.c.id < before_id)
    return [Change.from_row(row) for row in connection.execute(query).mappings()]


def steps_of(connection: Connection, change_id: int) -> tuple[Step, ...]:
    """A change's steps in plan order, each with its job's attempts."""
    query = (
        select(change_steps, jobs.c.attempts, jobs.c.last_error.label("job_error"))
        .select_from(change_steps.outerjoin(jobs, jobs.c.id == change_steps.c.job_id))
        .where(change_steps.c.change_id == change_id)
        .order_by(change_steps.c.position)
    )
    return tuple(
        Step.from_row(row, row["attempts"] or 0, row["job_error"])
        for row in connection.execute(query).mappings()
    )


def set_change(
    connection: Connection,
    change_id: int,
    now: datetime,
    *,
    only_if: Sequence[ChangeStatus] | None = None,
    **values: Any,
) -> bool:
    """Update a change (if its status is one of ``only_if``); whether it changed."""
    query = update(changes).where(changes.c.id == change_id)
    if only_if is not None:
        query = query.where(changes.c.status.in_(list(only_if)))
    return connection.execute(query.values(updated_at=now, **values)).rowcount == 1


def set_step(
    connection: Connection,
    step_id: int,
    *,
    only_if: Sequence[StepStatus] | None = None,
    **values: Any,
) -> bool:
    """Update a step (if its status is one of ``only_if``); whether it changed."""
    if "results" in values and values["results"] is not None:
        values["results"] = json.dumps(values["results"], ensure_ascii=False)
    query = update(change_steps).where(change_steps.c.id == step_id)
    if only_if is not None:
        query = query.where(change_steps.c.status.in_(list(only_if)))
    return connection.execute(query.values(**values)).rowcount == 1


def lock_change(connection: Connection, change_id: int) -> None:
    """Hold the change's row until the transaction ends (MySQL; SQLite's writes take turns)."""
    connection.execute(select(changes.c.id).where(changes.c.id == change_id).with_for_update())


def count_check(connection: Connection, step: Step) -> None:
    """Note one more readiness check of ``step``, if it is still open (a run that outlived its
    lease may find it closed by the run that took its job over)."""
    checks = change_steps.c.checks + 1
    set_step(connection, step.id, only_if=OPEN_STEPS, checks=checks, status=StepStatus.WAITING)


def _with_steps(connection: Connection, row: Any) -> Change:
    return Change.from_row(row, steps_of(connection, row["id"]))
