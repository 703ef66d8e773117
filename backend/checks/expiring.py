"""Licenses about to end: a reminder mail to the licensee and a word to the vendor's robot,
once per license at each of 30, 7 and 1 days before its end."""

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, exists, select

from backend.checks.facts import expiry_facts
from backend.jobs import queue
from backend.robots.events import RobotEvent
from backend.robots.notify import notify
from backend.services import Services
from backend.storage.applications import by_id
from backend.storage.schema import applications, licenses
from backend.subjects import Subject, SubjectType

THRESHOLDS = (30, 7, 1)
"""Days before a license's end when its licensee is reminded."""
SEND_EXPIRY_REMINDER = "send_expiry_reminder"


def threshold(remaining: timedelta, lifetime: timedelta) -> int | None:
    """The tightest threshold a license with ``remaining`` of its ``lifetime`` left has reached.

    Only the tightest: a timer that was away for weeks sends the one reminder that still
    matters, not every one it missed. Only thresholds the license lived past: a 30-day license
    is not told "30 days left" beside the mail that brings it. None for none.
    """
    if remaining <= timedelta(0):
        return None
    reached = [days for days in THRESHOLDS if remaining <= timedelta(days=days) < lifetime]
    return min(reached) if reached else None


def check(connection: Connection, services: Services, now: datetime) -> list[str]:
    """Record the reminders now due; what was recorded, a line each."""
    columns = (
        licenses.c.id,
        licenses.c.application_id,
        licenses.c.issued_at,
        licenses.c.valid_until,
    )
    query = select(*columns).where(
        licenses.c.valid_until > now,
        licenses.c.valid_until <= now + timedelta(days=max(THRESHOLDS)),
        ~_renewed(),
    )
    lines = []
    for license_id, application_id, issued_at, valid_until in connection.execute(
        query.order_by(licenses.c.id)
    ):
        days = threshold(valid_until - now, valid_until - issued_at)
        application = by_id(connection, application_id)
        if days is None or application is None:
            continue
        # The job's key names the threshold: however often the timer runs, one job each.
        job = queue.enqueue(
            connection,
            SEND_EXPIRY_REMINDER,
            Subject(SubjectType.LICENSE, license_id),
            now,
            part=str(days),
            payload={"days": days},
        )
        if job is None:
            continue
        facts = expiry_facts(services, application, license_id, valid_until, days)
        about = Subject(SubjectType.LICENSE, f"{license_id}.{days}")
        robots = services.robots.robots
        told = notify(connection, robots, RobotEvent.LICENSE_EXPIRING, about, now, facts)
        lines.append(
            f"expiry reminder: license {license_id} ({application.number}, {application.company})"
            f" ends {facts['expires']}, {days} day(s): mail to {application.email}"
            f", {len(told)} robot message(s)"
        )
    return lines


def _renewed() -> ColumnElement[bool]:
    """Whether a license running longer covers the same product and machine: renewed already."""
    mine, later, theirs = applications.alias("mine"), licenses.alias("later"), applications.alias()
    return exists().where(
        mine.c.id == licenses.c.application_id,
        later.c.application_id == theirs.c.id,
        theirs.c.product == mine.c.product,
        theirs.c.feature_code == mine.c.feature_code,
        later.c.valid_until > licenses.c.valid_until,
    )


def renewed(connection: Connection, license_id: str) -> bool:
    """Whether a license running longer has replaced ``license_id`` (a reminder can wait)."""
    query = select(licenses.c.id).where(licenses.c.id == license_id, _renewed())
    return connection.execute(query).first() is not None
