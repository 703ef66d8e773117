"""Approvals still undecided: a reminder to the approvers' robot once per interval."""

from datetime import datetime, timedelta

from sqlalchemy import Connection, select

from backend.applications.status import ApplicationStatus
from backend.robots.events import RobotEvent
from backend.robots.jobs import application_facts
from backend.robots.notify import notify
from backend.services import Services
from backend.storage.applications import by_id
from backend.storage.schema import applications
from backend.subjects import Subject

ABOUT = "pending_application"
"""What a reminder is about: ``<application id>.<interval>``, so each interval tells once."""


def check(connection: Connection, services: Services, every: timedelta, now: datetime) -> list[str]:
    """Remind of applications pending for ``every`` or longer; what was recorded, a line each."""
    query = select(applications.c.id).where(
        applications.c.status == ApplicationStatus.PENDING,
        applications.c.created_at <= now - every,
    )
    lines = []
    for (application_id,) in connection.execute(query.order_by(applications.c.id)):
        application = by_id(connection, application_id)
        if application is None:
            continue
        waited = now - application.created_at
        interval = waited // every  # 1 after `every`, 2 after twice as long, ...
        facts = {
            **application_facts(services, application),
            "hours": int(waited.total_seconds() // 3600),
            "submitted": application.created_at.strftime("%Y-%m-%d %H:%M UTC"),
        }
        about = Subject(ABOUT, f"{application_id}.{interval}")
        robots = services.robots.robots
        told = notify(connection, robots, RobotEvent.APPROVAL_PENDING, about, now, facts)
        if told:
            lines.append(
                f"approval reminder: {application.number} ({application.company}) pending "
                f"{facts['hours']} h: {len(told)} robot message(s)"
            )
    return lines
