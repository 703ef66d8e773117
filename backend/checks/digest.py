"""The daily digest of jobs that need a person: failed ones, and ones long overdue.

"Stuck changes" are jobs here too: dingpass has no change engine yet, so what can be stuck is
a job waiting or running far past its time (a runner that stopped, a condition that never
comes). Once changes exist, their stuck states belong in this digest as well.
"""

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select

from backend.jobs.model import JobStatus
from backend.robots.events import RobotEvent
from backend.robots.messages import MAX_FACT
from backend.robots.notify import notify
from backend.services import Services
from backend.storage.schema import jobs
from backend.subjects import Subject

OVERDUE = timedelta(hours=1)
"""How long past its time a job that has not run is worth a person's look."""
MOST = 20
"""Jobs of each sort listed at most, newest first: a chat message is no place for more (the
digest says how many it left out)."""
ABOUT = "daily_digest"


def check(connection: Connection, services: Services, hour: int, now: datetime) -> list[str]:
    """Record today's digest once it is ``hour`` (UTC) and there is anything to tell."""
    if now.hour < hour:
        return []
    failed, failed_count = _listed(connection, jobs.c.status == JobStatus.FAILED)
    late = now - OVERDUE
    overdue, overdue_count = _listed(
        connection,
        or_(
            and_(jobs.c.status.in_([JobStatus.QUEUED, JobStatus.WAITING]), jobs.c.run_after < late),
            and_(jobs.c.status == JobStatus.RUNNING, jobs.c.lease_until < late),
        ),
    )
    if not failed and not overdue:
        return []
    day = now.date().isoformat()
    facts = {
        "date": day,
        "failed": failed,
        "overdue": overdue,
        "failed_count": failed_count,
        "overdue_count": overdue_count,
        "failed_more": failed_count - len(failed),
        "overdue_more": overdue_count - len(overdue),
        "overdue_hours": int(OVERDUE.total_seconds() // 3600),
    }
    # One digest a day: the day is what it is about.
    robots = services.robots.robots
    told = notify(connection, robots, RobotEvent.DAILY_DIGEST, Subject(ABOUT, day), now, facts)
    if not told:
        return []
    return [
        f"daily digest {day}: {failed_count} failed, {overdue_count} overdue job(s): "
        f"{len(told)} robot message(s)"
    ]


def _listed(connection: Connection, where: Any) -> tuple[list[dict[str, Any]], int]:
    """The newest MOST jobs ``where`` holds, and how many it holds in all."""
    total = connection.execute(select(func.count()).select_from(jobs).where(where)).scalar_one()
    query = select(jobs).where(where).order_by(jobs.c.id.desc()).limit(MOST)
    return [
        {
            "id": row["id"],
            "kind": row["kind"],
            "subject": f"{row['subject_type']} {row['subject_id']}" if row["subject_type"] else "-",
            "status": row["status"],
            "attempts": row["attempts"],
            "due": row["run_after"].strftime("%Y-%m-%d %H:%M UTC"),
            "error": _line(row["last_error"] or ""),
        }
        for row in connection.execute(query).mappings()
    ], total


def _line(text: str) -> str:
    """An error as one short line of plain text: the robot's template shows it as it is."""
    plain = " ".join(text.split()).translate(str.maketrans("[]<>", "［］＜＞"))
    return plain if len(plain) <= MAX_FACT else plain[: MAX_FACT - 1] + "…"
