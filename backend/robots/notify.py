"""Recording what robots are to be told, in the caller's transaction: one job per robot.

Recording needs only names and rows, not the senders, so the modules where events happen
import this and nothing of the HTTP clients.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from backend.jobs import queue
from backend.robots import outbox
from backend.robots.config import Robot, subscribed
from backend.robots.events import RobotEvent
from backend.subjects import Subject, SubjectType

SEND_ROBOT_MESSAGE = "send_robot_message"


def notify(
    connection: Connection,
    robots: Sequence[Robot],
    event: RobotEvent,
    about: Subject,
    now: datetime,
    facts: dict[str, Any] | None = None,
) -> list[int]:
    """Record a message, and the job that sends it, for each robot told of ``event``.

    An event about the same subject recorded again tells no robot twice. ``facts`` are kept
    for what cannot be read again when the message is sent (a failed job's error); an
    application is read as it is then. The ids of the jobs recorded now.
    """
    jobs = []
    for robot in subscribed(tuple(robots), event):
        message_id = outbox.record(connection, robot.name, event.value, about, now, facts)
        if message_id is None:
            continue
        subject = Subject(SubjectType.NOTIFICATION, str(message_id))
        job_id = queue.enqueue(connection, SEND_ROBOT_MESSAGE, subject, now)
        if job_id is not None:
            jobs.append(job_id)
    return jobs
