"""Deleting what a failed change created, newest first, as each resource's plugin knows how."""

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from backend.changes.context import ChangeContext
from backend.changes.errors import CleanupIncomplete, CleanupRefused, UnknownChange
from backend.changes.model import OPEN_STEPS, Change, ChangeStatus, Step, StepStatus
from backend.changes.steps import client_token, resolve_inputs
from backend.cloud.errors import CloudError, CloudRefused, CloudRetryable
from backend.cloud.plugins.base import Plugin
from backend.jobs import queue
from backend.storage import changes as store
from backend.storage.database import Database

CLEANABLE = (ChangeStatus.FAILED, ChangeStatus.CANCELLED, ChangeStatus.REFUSED)
BUSY = (
    "DependencyViolation",
    "IncorrectInstanceStatus",
    "IncorrectVSwitchStatus",
    "IncorrectVpcStatus",
)
"""Codes of a resource that cannot go yet because one inside it is still going away."""


def cleanup(
    database: Database,
    context: ChangeContext,
    public_id: str,
    clock: Callable[[], datetime],
    *,
    patience: timedelta = timedelta(minutes=5),
    sleep: Callable[[float], None] = time.sleep,
) -> list[Step]:
    """Delete every resource change ``public_id`` created that still exists; the steps done."""
    change = _cleanable(database, public_id, clock())
    change = _named_in_doubt(database, context, change)
    deleted, failures = [], []
    for step in sorted(_existing(change), key=lambda s: s.position, reverse=True):
        try:
            _delete(context, step, clock, patience, sleep)
        except CloudError as err:
            failures.append(f"{step.name} {step.resource_id}: {err}")
            continue
        with database.transaction() as connection:
            store.set_step(connection, step.id, deleted_at=clock())
        deleted.append(step)
    if failures:
        raise CleanupIncomplete(
            "could not delete: " + "; ".join(failures) + ". Fix the cause (the console shows "
            "what holds them), then run the cleanup again: what is gone stays recorded."
        )
    return deleted


def _cleanable(database: Database, public_id: str, now: datetime) -> Change:
    """The change, once its unfinished steps' jobs are cancelled; refused if it may not go."""
    with database.transaction() as connection:
        change = store.by_public_id(connection, public_id)
        if change is None:
            raise UnknownChange(f"no change {public_id}: `dingpass changes list` shows them")
        if change.status not in CLEANABLE:
            raise CleanupRefused(
                f"change {public_id} is {change.status}: only a failed, refused or cancelled "
                "change is cleaned up (a running one may still be making its resources)"
            )
        open_steps = [s for s in change.steps if s.status in OPEN_STEPS]
        open_jobs = [s.job_id for s in open_steps if s.job_id is not None]
        if set(open_jobs) - set(queue.cancel(connection, open_jobs, now)):
            raise CleanupRefused(
                f"a step of change {public_id} is running right now; try again in a minute"
            )
        for step in open_steps:  # no runner takes them up any more
            store.set_step(
                connection,
                step.id,
                status=StepStatus.CANCELLED,
                last_error="cancelled: the change is being cleaned up",
                finished_at=now,
            )
        return store.by_id(connection, change.id)


def _named_in_doubt(database: Database, context: ChangeContext, change: Change) -> Change:
    """The change with the resource of each step whose create went out unanswered named.

    The same create again, with the step's ClientToken, names the resource the first one
    made (or makes it, and then it is named too): nothing is left that nobody recorded. A
    create the cloud refuses made nothing: with the same token it would name what it had made.
    """
    for step in change.steps:
        if step.resource_id is not None or step.started_at is None:
            continue
        plugin = _plugin(context, step)
        token, inputs = client_token(change, step), resolve_inputs(change, step)
        try:
            started = plugin.start(context.cloud, step.spec, token, inputs)
        except CloudRefused:
            continue
        with database.transaction() as connection:
            store.set_step(connection, step.id, resource_id=started.resource_id)
    with database.transaction() as connection:
        return store.by_id(connection, change.id)


def _plugin(context: ChangeContext, step: Step) -> Plugin:
    plugin = context.plugins.get(step.type)
    if plugin is None:
        raise CleanupRefused(f"no plugin for {step.type!r} in this version: upgrade dingpass")
    return plugin


def _existing(change: Change) -> list[Step]:
    return [s for s in change.steps if s.resource_id is not None and s.deleted_at is None]


def _delete(
    context: ChangeContext,
    step: Step,
    clock: Callable[[], datetime],
    patience: timedelta,
    sleep: Callable[[float], None],
) -> None:
    """Delete one step's resource, waiting while the cloud is busy or the resources in it go."""
    plugin = _plugin(context, step)
    resource_id = step.resource_id or ""  # _existing gave only steps that made one
    give_up, pause = clock() + patience, 1.0
    while True:
        try:
            plugin.delete(context.cloud, resource_id)
            return
        except CloudError as err:
            waitable = isinstance(err, CloudRetryable) or str(err.code or "").startswith(BUSY)
            if not waitable or clock() >= give_up:
                raise
        sleep(pause)
        pause = min(pause * 2, 15.0)
