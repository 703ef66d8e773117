"""send_robot_message: tell a robot of an event, within its budget, merging a burst into one.

A message waits a moment (ROBOT_GATHER) for others to the same robot; the first of them to
run takes a place in the robot's budget and carries every message still waiting (a digest),
the others find theirs carried and are done. A digest carries messages only while its text
stays within the robots' size (ROBOT_MESSAGE_BYTES); the rest wait for the next. Out of
budget, a job waits for the next free place instead of failing, so nothing is dropped and the
robot is never sent more than it takes.
"""

import functools
import hashlib
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from backend.jobs.model import OUTAGE_RETRY, Done, Job, Outcome, Wait
from backend.jobs.registry import Registry
from backend.jobs.runner import FailureHook
from backend.robots import budget, outbox
from backend.robots.config import Robot
from backend.robots.errors import RobotThrottled
from backend.robots.events import RobotEvent
from backend.robots.messages import Facts, digest, fits
from backend.robots.notify import SEND_ROBOT_MESSAGE, notify
from backend.services import Services
from backend.storage.applications import Application, by_id
from backend.subjects import Subject, SubjectType

log = logging.getLogger(__name__)
kinds: Registry[Services] = Registry()


@kinds.kind(SEND_ROBOT_MESSAGE, retry=OUTAGE_RETRY)
def send_robot_message(services: Services, job: Job) -> Outcome:
    """Send this job's message, with those waiting for the same robot, once."""
    # Run again from the start if MariaDB's snapshot isolation refuses a place another job took
    # since this one read its message (1020): by then its message may be carried already.
    taken = services.database.run(functools.partial(_take, services, job))
    if not isinstance(taken, tuple):
        return taken
    robot, carried = taken
    items = [(RobotEvent(m.event), facts) for m, facts in carried]
    uuid = batch_uuid(services.robots.public_base_url, [m for m, _ in carried])
    return _send(services, job, robot, items, uuid)


def _take(
    services: Services, job: Job, connection: Connection
) -> "Outcome | tuple[Robot, Carried]":
    """The robot and the batch to send, with a place in its budget; or what the job does now."""
    context = services.robots
    message_id = job.subject.number(SubjectType.NOTIFICATION) if job.subject else 0
    message = outbox.get(connection, message_id)
    if message.sent_at is not None or message.batch not in (None, job.id):
        return Done()  # carried by another job's digest
    robot = context.robot(message.robot)
    now = services.clock()
    if message.batch is None and now - message.recorded_at < context.gather:
        return Wait(check_in=context.gather - (now - message.recorded_at))
    place = budget.place(connection, robot.name, now, context.per_minute, context.window)
    if isinstance(place, timedelta):
        return Wait(check_in=place)
    if message.batch is None:
        outbox.claim(connection, message, job.id, context.digest_max)
        carried = _fitted(connection, services, robot, job.id, message)
    else:
        again = outbox.batch(connection, robot.name, job.id)  # this job's batch, retried
        carried = _with_facts(connection, services, again)
    if not carried:  # another runner claimed it between the read and the claim
        connection.rollback()  # and the place taken for it stays free
        return Done()
    # Stamped with the clock read now, after any lock the claim waited for: the place must
    # not leave the robot's window before the send it stands for has gone.
    budget.stamp(connection, robot.name, place, services.clock())
    return robot, carried


Carried = list[tuple[outbox.RobotMessage, Facts]]
"""A batch's messages, each with what its template fills in."""


def _with_facts(
    connection: Connection, services: Services, messages: list[outbox.RobotMessage]
) -> Carried:
    return [(m, _facts(connection, services, m)) for m in messages]


def _fitted(
    connection: Connection,
    services: Services,
    robot: Robot,
    batch_id: int,
    message: outbox.RobotMessage,
) -> Carried:
    """The claimed batch cut to what one message of the robot's size carries; the rest are
    released, in the claim's transaction, for the next batch (their jobs never saw them taken).
    The job's own message stays, alone if it must: its job ends when this batch is sent."""
    claimed = _with_facts(connection, services, outbox.batch(connection, robot.name, batch_id))
    own = [c for c in claimed if c[0].id == message.id] or claimed[:1]
    kept = list(own)
    for other in (c for c in claimed if c[0].id != own[0][0].id):
        trial = sorted([*kept, other], key=lambda c: c[0].id)
        if not fits(robot, [(RobotEvent(m.event), facts) for m, facts in trial]):
            break
        kept = trial
    kept_ids = {m.id for m, _ in kept}
    rest = [m.id for m, _ in claimed if m.id not in kept_ids]
    if rest:
        outbox.release(connection, robot.name, batch_id, rest)
    return sorted(kept, key=lambda c: c[0].id)


def batch_uuid(deployment: str, carried: list[outbox.RobotMessage]) -> str:
    """DingTalk's msgUuid for a batch: the same on every retry of it, and unlike any other
    batch's, even after a database reset or from another deployment posting to the robot
    (whose ids start again at 1, or count the same)."""
    words = [
        deployment,
        *(f"{m.id}/{m.recorded_at.isoformat()}/{m.event}/{m.about}" for m in carried),
    ]
    return "dingpass-" + hashlib.sha256("\n".join(words).encode()).hexdigest()[:32]


def _send(
    services: Services, job: Job, robot: Robot, items: list[tuple[RobotEvent, Facts]], uuid: str
) -> Outcome:
    try:
        # The same msgUuid on every retry of this batch: DingTalk shows a repeated send once.
        services.robots.sender().send(robot, digest(robot, items), uuid=uuid)
    except RobotThrottled as err:
        log.warning("%s; trying again in %s", err, services.robots.pause)
        return Wait(check_in=services.robots.pause)
    with services.database.transaction() as connection:
        outbox.mark_sent(connection, robot.name, job.id, services.clock())
    return Done()


def _facts(connection: Connection, services: Services, message: outbox.RobotMessage) -> Facts:
    """What the message's template needs: the application as it stands, or the kept facts."""
    if message.about.type != SubjectType.APPLICATION:
        return message.facts
    application = by_id(connection, message.about.number(SubjectType.APPLICATION))
    if application is None:
        raise LookupError(f"robot message {message.id}: its {message.about} does not exist")
    return {**application_facts(services, application), **message.facts}


def application_facts(services: Services, application: Application) -> dict[str, Any]:
    """What a robot's templates show of an application, as it stands."""
    product = services.catalogue.get(application.product)
    names = product.names if product else {}
    base = services.robots.public_base_url
    return {
        "number": application.number,
        "product_name": names.get("zh", application.product),
        "product_names": dict(names),
        "quantity": application.quantity,
        "validity": application.validity,
        "company": application.company,
        "contact": application.contact,
        "email": application.email,
        "phone": application.phone,
        "feature_code": application.feature_code,
        "note": application.note,
        "status": application.status.value,
        "instance_id": application.instance_id,
        "status_url": f"{base}/status/{application.token}",
    }


def failed_job_notifier(services: Services) -> FailureHook:
    """Tell the robots of a job that gave up after its attempts, with its last error."""

    def on_failed(connection: Connection, job: Job, error: str, now: datetime) -> None:
        if job.kind == SEND_ROBOT_MESSAGE:
            return  # a robot that cannot send cannot be told so by itself; the log says it
        facts = {
            "job_id": job.id,
            "kind": job.kind,
            "subject": str(job.subject or "-"),
            "attempts": job.attempts,
            "error": error,
        }
        # A job that fails again after `dingpass jobs retry` is news again: its version differs.
        about = Subject("job", f"{job.id}.{job.version}")
        notify(connection, services.robots.robots, RobotEvent.JOB_FAILED, about, now, facts)

    return on_failed
