"""Recording the reconciliation job, once: it runs every RECONCILE_AFTER seconds from then on."""

from datetime import datetime, timedelta

from sqlalchemy import Connection

from backend.approvals.reconcile_job import RECONCILE_KIND
from backend.jobs import queue
from backend.services import Services


def check(connection: Connection, services: Services, every: timedelta, now: datetime) -> list[str]:
    """Record the reconciliation job if DingTalk is configured and it was never recorded."""
    if services.opener is None:
        return []
    payload = {"every": int(every.total_seconds())}
    if queue.enqueue(connection, RECONCILE_KIND, None, now, part="all", payload=payload) is None:
        return []
    return [f"reconciliation with DingTalk every {payload['every']} s"]
