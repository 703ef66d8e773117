"""The job that carries out one step of a change, and what a step's failure does to the rest.

A step's job starts its resource through the plugin, then parks itself (Wait) until the
resource is ready, re-checked at growing intervals: no runner is held while the cloud works.
The create call carries a ClientToken made from the change and step, so a job run again
after a crash, before its resource id was recorded, gets the same resource back.
"""

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from backend.changes import outcome
from backend.changes.context import ChangeContext
from backend.changes.model import OPEN_STEPS, UNFINISHED, Change, ChangeStatus, Step, StepStatus
from backend.changes.names import STEP_KIND
from backend.cloud.errors import CloudError
from backend.cloud.plugins.base import Plugin, Results
from backend.exceptions import RetryCannotHelp
from backend.jobs import queue
from backend.jobs.model import Cancelled, Done, Job, Outcome, Retry, Wait
from backend.jobs.registry import Registry
from backend.services import Services
from backend.storage import changes as store
from backend.subjects import SubjectType

kinds: Registry[Services] = Registry()
STEP_RETRY = Retry(
    max_attempts=None,
    first=timedelta(seconds=2),
    cap=timedelta(minutes=1),
    horizon=timedelta(minutes=15),
)
"""Throttling and outages of the cloud: backing off up to a minute apart, for 15 minutes."""


class StepNotReady(RetryCannotHelp):
    """A resource stayed short of ready for longer than a step waits."""


class StepNotResumed(RetryCannotHelp):
    """A failed step's job was run again (`dingpass jobs retry`): a failed change stays so."""


@kinds.kind(STEP_KIND, retry=STEP_RETRY)
def run_step(services: Services, job: Job) -> Outcome:
    """Start the step's resource, or check on it; Done once it is ready."""
    context = _context(services)
    with services.database.transaction() as connection:
        change = store.by_id(connection, _change_id(job))
        step = _named(change, job.payload["step"])
    if step.status == StepStatus.FAILED:
        raise StepNotResumed(
            f"change {change.public_id} failed at step {step.name}, and a failed change is not "
            f"resumed: `dingpass changes cleanup {change.public_id}` deletes what it made; "
            "then send the request again under a new request_id"
        )
    if step.status not in OPEN_STEPS:
        return Done()
    plugin = _plugin(context, step)
    if change.status not in UNFINISHED:
        wind_down(services, context, plugin, change, step)
        return Cancelled()
    if not _mark_started(services, change, step):
        return Done()  # closed since the job began, by the run that took it over: nothing to make
    if step.resource_id is None:
        return _start(services, context, plugin, change, step)
    return _check(services, context, plugin, change, step)


def _start(
    services: Services, context: ChangeContext, plugin: Plugin, change: Change, step: Step
) -> Outcome:
    """The create call; recorded at once, so that only a crash right here repeats it."""
    inputs = resolve_inputs(change, step)
    try:
        started = plugin.start(context.cloud, step.spec, client_token(change, step), inputs)
    except CloudError as err:
        if err.resource_id is not None:  # made, then failed: the change must report it
            with services.database.transaction() as connection:
                store.set_step(connection, step.id, resource_id=err.resource_id)
        raise
    with services.database.transaction() as connection:
        status = StepStatus.RUNNING if started.ready else StepStatus.WAITING
        # What was made is recorded whatever happened meanwhile, for cleanup; the status only
        # of a step still open: a run that outlived its lease may find it closed by the next.
        store.set_step(connection, step.id, resource_id=started.resource_id)
        store.set_step(connection, step.id, only_if=OPEN_STEPS, status=status)
    if not started.ready:
        return Wait({"resource_id": started.resource_id}, context.check_in(0))
    _succeeded(services, change, step, started.results)
    return Done()


def _check(
    services: Services, context: ChangeContext, plugin: Plugin, change: Change, step: Step
) -> Outcome:
    """One readiness check: Done when ready, else Wait a little longer than last time."""
    now = services.clock()
    waited = now - (step.started_at or now)
    if waited > context.ready_timeout:
        raise StepNotReady(
            f"{step.type} {step.resource_id} is still not ready after {waited}: look at it in "
            "the console; `dingpass changes cleanup` deletes what the change made"
        )
    resource_id = step.resource_id or ""
    progress = plugin.check(context.cloud, resource_id)
    if not progress.ready:
        with services.database.transaction() as connection:
            store.count_check(connection, step)
        condition = {"resource_id": resource_id, "state": progress.state}
        return Wait(condition, context.check_in(step.checks + 1))
    _succeeded(services, change, step, progress.results)
    return Done()


def wind_down(
    services: Services, context: ChangeContext, plugin: Plugin, change: Change, step: Step
) -> None:
    """Cancel a step of a change that failed meanwhile, its resource id known first.

    A step whose create call went out but whose answer never came (a lost answer, a runner
    killed) may have made its resource: the same call again, with the same ClientToken,
    names it (or makes it, and then it is known too), so that the change reports exactly
    which resources exist and cleanup deletes them all.
    """
    resource_id = step.resource_id
    if resource_id is None and step.started_at is not None:
        token, inputs = client_token(change, step), resolve_inputs(change, step)
        resource_id = plugin.start(context.cloud, step.spec, token, inputs).resource_id
    now = services.clock()
    with services.database.transaction() as connection:
        store.set_step(
            connection,
            step.id,
            only_if=OPEN_STEPS,
            status=StepStatus.CANCELLED,
            resource_id=resource_id,
            last_error=f"cancelled: the change is {change.status}",
            finished_at=now,
        )
        cancel_after(connection, change, step.name, now)


def client_token(change: Change, step: Step) -> str:
    """The ClientToken of a step's create call: the same on every run of its job."""
    return f"{change.public_id}-{step.name}"


def resolve_inputs(change: Change, step: Step) -> dict[str, Any]:
    """The values ``step`` takes from the request or from earlier steps' results."""
    results = {s.name: s.results or {} for s in change.steps}
    return {
        param: source["value"] if "value" in source else results[source["step"]][source["key"]]
        for param, source in step.inputs.items()
    }


def on_step_failed(connection: Connection, job: Job, error: str, now: datetime) -> None:
    """A step's job gave up: the step and its change fail, and the steps after it are cancelled.

    Runs in the transaction that marks the job failed (the runner's failure hook).
    """
    if job.kind != STEP_KIND or job.subject is None:
        return
    change = store.by_id(connection, _change_id(job))
    step = _named(change, job.payload["step"])
    if step.status not in OPEN_STEPS:  # a failed step run again: its first error stands
        return
    store.set_step(connection, step.id, status=StepStatus.FAILED, last_error=error, finished_at=now)
    failed = store.set_change(
        connection,
        change.id,
        now,
        only_if=UNFINISHED,
        status=ChangeStatus.FAILED,
        error=f"step {step.name} ({step.type}) failed: {error}",
        finished_at=now,
    )
    cancel_after(connection, change, step.name, now)
    if failed:
        outcome.ended(connection, change, ChangeStatus.FAILED, now)


def cancel_after(connection: Connection, change: Change, ended: str, now: datetime) -> None:
    """Cancel the steps that need ``ended``, directly or through others, and their jobs."""
    doomed = {ended}
    for step in change.steps:  # plan order: a step comes after every step it needs
        if doomed & set(step.needs):
            doomed.add(step.name)
    cancelled = [s for s in change.steps if s.name in doomed - {ended}]
    for step in cancelled:
        store.set_step(
            connection,
            step.id,
            only_if=(StepStatus.PLANNED,),
            status=StepStatus.CANCELLED,
            last_error=f"cancelled: step {ended} did not succeed",
            finished_at=now,
        )
    queue.cancel(connection, [s.job_id for s in cancelled if s.job_id is not None], now)


def _succeeded(services: Services, change: Change, step: Step, results: Results) -> None:
    now = services.clock()
    with services.database.transaction() as connection:
        # The change's row first: two last steps finishing at once take turns here, so the
        # second sees the first's success (MySQL's snapshot would otherwise hide it).
        store.lock_change(connection, change.id)
        if not store.set_step(
            connection,
            step.id,
            only_if=OPEN_STEPS,  # not a step the run that took the job over closed meanwhile
            status=StepStatus.SUCCEEDED,
            results=results,
            last_error=None,
            finished_at=now,
        ):
            return
        steps = store.steps_of(connection, change.id)
        if all(s.status == StepStatus.SUCCEEDED for s in steps) and store.set_change(
            connection,
            change.id,
            now,
            only_if=UNFINISHED,
            status=ChangeStatus.SUCCEEDED,
            finished_at=now,
        ):
            outcome.ended(connection, change, ChangeStatus.SUCCEEDED, now)


def _mark_started(services: Services, change: Change, step: Step) -> bool:
    """Note the step started (and its change running); False if it was closed meanwhile."""
    now = services.clock()
    with services.database.transaction() as connection:
        if step.started_at is None and not store.set_step(  # as read when the job began
            connection,
            step.id,
            only_if=(StepStatus.PLANNED,),
            status=StepStatus.RUNNING,
            started_at=now,
        ):
            return False
        if change.status == ChangeStatus.PLANNED:
            store.set_change(
                connection,
                change.id,
                now,
                only_if=(ChangeStatus.PLANNED,),
                status=ChangeStatus.RUNNING,
            )
    return True


def _context(services: Services) -> ChangeContext:
    if services.changes is None:
        raise RetryCannotHelp("resource changes are not set up in this runner (no plugins)")
    return services.changes


def _plugin(context: ChangeContext, step: Step) -> Plugin:
    plugin = context.plugins.get(step.type)
    if plugin is None:
        raise RetryCannotHelp(
            f"no plugin for resource type {step.type!r} in this version: upgrade the runner"
        )
    return plugin


def _change_id(job: Job) -> int:
    if job.subject is None:
        raise RetryCannotHelp(f"job {job.id} of kind {job.kind} is about no change")
    return job.subject.number(SubjectType.CHANGE)


def _named(change: Change, name: str) -> Step:
    for step in change.steps:
        if step.name == name:
            return step
    raise RetryCannotHelp(f"change {change.public_id} has no step {name!r}")
