"""Running every check in one transaction, and at most once a minute from a runner's loop."""

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection

from backend.checks import digest, expiring, pending, reconcile
from backend.config import Config
from backend.services import Services

log = logging.getLogger(__name__)
EVERY = 60.0
"""Seconds between check passes in a runner's loop: as often as FC's timer runs them."""


@dataclass(frozen=True)
class CheckSettings:
    """What the checks take from the configuration."""

    pending_every: timedelta = timedelta(hours=24)
    digest_hour: int = 1
    reconcile_every: timedelta = timedelta(minutes=10)

    @classmethod
    def from_config(cls, config: Config) -> "CheckSettings":
        """PENDING_REMINDER_HOURS, DIGEST_HOUR and RECONCILE_AFTER."""
        return cls(
            timedelta(hours=config.pending_reminder_hours),
            config.digest_hour,
            timedelta(seconds=config.reconcile_after),
        )


class _DryRun(Exception):
    """Rolls back a dry run's transaction: everything is checked, nothing kept."""


def run_checks(
    services: Services, settings: CheckSettings, now: datetime, dry_run: bool = False
) -> list[str]:
    """Record what the checks find due now, once per thing; what was (or would be) recorded."""
    found: list[str] = []

    def work(connection: Connection) -> None:
        found.clear()  # a transaction MySQL rolled back runs again from the start
        found.extend(expiring.check(connection, services, now))
        found.extend(pending.check(connection, services, settings.pending_every, now))
        found.extend(digest.check(connection, services, settings.digest_hour, now))
        found.extend(reconcile.check(connection, services, settings.reconcile_every, now))
        if dry_run:
            raise _DryRun

    try:
        services.database.run(work)
    except _DryRun:
        pass
    return found


def check_now(services: Services, settings: CheckSettings, clock: Callable[[], datetime]) -> bool:
    """One pass, as a timer runs it: whether it recorded anything. A failure is logged, not
    raised, so that the jobs of the same pass still run."""
    try:
        found = run_checks(services, settings, clock())
    except Exception:
        log.exception("scheduled checks failed; the next pass tries again")
        return False
    for line in found:
        log.info("scheduled check: %s", line)
    return bool(found)


def check_every_minute(
    services: Services,
    settings: CheckSettings,
    stop: threading.Event,
    kick: Callable[[], None],
    every: float = EVERY,
) -> None:
    """The checks of a long-running runner (`dingpass runner`, `dingpass dev`): a pass every
    ``every`` seconds until ``stop``, kicking the runner when one recorded work so that it
    runs at once."""
    while not stop.is_set():
        if check_now(services, settings, services.clock):
            kick()
        stop.wait(every)
