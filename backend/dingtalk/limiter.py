"""DingTalk's per-API rate limit, kept by every function instance together through the database.

DingTalk allows an app 20 calls per second to each API, and answers a call over it with 403
QpsLimitForAppkeyAndApi. Function instances run side by side (many runners in a burst, the
approval function beside them), so each call first takes the next free slot of its API from one
row in the database, and waits for it: a burst is smoothed to the limit instead of refused.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, select, text, update

from backend.exceptions import DingTalkRateLimited
from backend.storage.database import Database
from backend.storage.schema import dingtalk_call_slots

MICROSECONDS = 1_000_000
REBOOKINGS = 5
"""Slots a call may take, woken too late for each, before it gives up as rate-limited."""
LONGEST_WAIT = 10.0
"""Seconds a call may wait for its slot; a longer queue is DingTalk's limit hit, retried later."""


@dataclass(frozen=True)
class CallLimiter:
    """Spaces one app key's calls to each API at most ``per_second`` apart, across processes."""

    database: Database
    app_key: str
    per_second: float
    now: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    def wait_turn(self, api: str) -> None:
        """Block until ``api`` may be called; DingTalkRateLimited if that is too far off."""
        if self.per_second <= 0:  # no limit configured
            return
        spacing = int(MICROSECONDS / self.per_second)
        for _ in range(REBOOKINGS):
            slot = self._book(api, spacing)
            # Woken late (a busy machine), the call would bunch with the next slots' calls and
            # go over DingTalk's count for that second: it takes a new slot instead.
            if self.now() * MICROSECONDS - slot <= spacing / 2:
                return
        raise DingTalkRateLimited(f"DingTalk's {api} API: no slot kept, try again later")

    def _book(self, api: str, spacing: int) -> int:
        """Book a slot of ``api`` and sleep until it; the slot, in epoch microseconds."""
        now, longest = int(self.now() * MICROSECONDS), int(LONGEST_WAIT * MICROSECONDS)
        slot = self.database.run(lambda c: take_slot(c, self.app_key, api, (now, longest), spacing))
        if slot is None:
            raise DingTalkRateLimited(
                f"DingTalk's {api} API is booked over {LONGEST_WAIT:g} s ahead at "
                f"{self.per_second:g} calls/s: try again later"
            )
        wait = slot / MICROSECONDS - self.now()  # the booking itself took a moment
        if wait > 0:
            self.sleep(wait)
        return slot


def take_slot(
    connection: Connection, app_key: str, api: str, now_longest: tuple[int, int], spacing: int
) -> int | None:
    """Book the next free slot (epoch microseconds) of ``api`` for ``app_key``; when it is, or
    None if it is more than ``now_longest[1]`` after ``now_longest[0]`` (nothing is booked).

    One upsert moves the row's next free slot on by ``spacing`` (from now, if it lay in the
    past), so concurrent callers each get their own slot; reading the row back in the same
    transaction sees this caller's booking, and a booking too far off is taken back before
    anyone else can book (the row stays locked until the transaction ends).
    """
    now, longest = now_longest
    values = {"app_key": app_key, "api": api, "now": now, "spacing": spacing}
    connection.execute(_BOOK[connection.dialect.name], values)
    table = dingtalk_call_slots.c
    mine = (table.app_key == app_key, table.api == api)
    booked = int(connection.execute(select(table.next_at).where(*mine)).scalar_one())
    slot = booked - spacing
    if slot - now <= longest:
        return slot
    # Refused callers must not push the queue on: each would add dead time for everyone after.
    connection.execute(update(dingtalk_call_slots).where(*mine).values(next_at=slot))
    return None


_BOOK = {
    # Written out: SQLAlchemy compiles its MySQL upsert construct anew on every call.
    "mysql": text(
        "INSERT INTO dingtalk_call_slots (app_key, api, next_at) "
        "VALUES (:app_key, :api, :now + :spacing) "
        "ON DUPLICATE KEY UPDATE next_at = GREATEST(next_at, :now) + :spacing"
    ),
    "sqlite": text(
        "INSERT INTO dingtalk_call_slots (app_key, api, next_at) "
        "VALUES (:app_key, :api, :now + :spacing) "
        "ON CONFLICT (app_key, api) DO UPDATE SET next_at = MAX(next_at, :now) + :spacing"
    ),
}


__all__ = ["LONGEST_WAIT", "CallLimiter", "take_slot"]
