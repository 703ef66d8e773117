"""Throttling guesses: failed redemptions counted per client and per feature code.

The counts are rows of rate_limits (fixed windows, in the database), so the limits hold
across function instances. Only failures count: a typo caught by the check symbol never
reaches here, and a redemption that succeeds costs nothing.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from backend.exceptions import RateLimited
from backend.storage import rate_limits
from backend.storage.database import Database
from backend.storage.rate_limits import Counter

FAILURES_PER_IP = 10
"""Failed redemptions one client IP may make per window (the QR page)."""
FAILURES_PER_FEATURE_CODE = 5
"""Failed redemptions for one product's feature code per window, from anywhere."""
FAILURES_PER_APP = 100
"""Failed redemptions one partner app may make per window (it relays many customers)."""
FAILURE_WINDOW = 15 * 60
"""Seconds of the window failures are counted in."""


@dataclass(frozen=True)
class RedeemLimits:
    """How many failed redemptions are allowed per window (seconds), and to whom."""

    per_ip: int = FAILURES_PER_IP
    per_feature_code: int = FAILURES_PER_FEATURE_CODE
    per_app: int = FAILURES_PER_APP
    window: int = FAILURE_WINDOW


class TooManyFailures(RateLimited):
    """Too many failed redemptions from one client or for one feature code in the window."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        minutes = max(1, round(retry_after / 60))
        self.message = {
            "zh": f"激活码错误次数过多，请 {minutes} 分钟后再试。",
            "en": f"Too many failed activation codes; try again in {minutes} minutes.",
        }


class Throttle:
    """Counts attempts and refuses those over a limit, window by window; a success is given
    back, so that only failures count in the end."""

    def __init__(self, database: Database, window: int, clock: Callable[[], datetime]) -> None:
        self.database, self.window, self.clock = database, window, clock

    def charge(self, counters: Sequence[Counter]) -> None:
        """Count this attempt on each counter, or TooManyFailures if one is over its limit.

        Counted before the attempt is made, on every counter by one atomic upsert committed
        at once: attempts sent at the same moment cannot all pass a check that none has counted
        yet. One upsert, not one per counter: a read between two would take the transaction's
        snapshot, and an attempt counted meanwhile on the second would fail this one's count
        under MariaDB's snapshot isolation (1020).
        """
        now = int(self.clock().timestamp())
        with self.database.transaction() as connection:
            wait = rate_limits.hit_all(connection, counters, self.window, now)
        if wait is not None:
            raise TooManyFailures(wait)

    def give_back(self, counters: Sequence[Counter]) -> None:
        """Uncount an attempt that succeeded: a customer's own redemptions are no guesses."""
        now = int(self.clock().timestamp())
        with self.database.transaction() as connection:
            for key, _ in counters:
                rate_limits.give_back(connection, key, self.window, now)
