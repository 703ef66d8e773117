"""Fixed-window counters in the database, so limits hold across function instances."""

from sqlalchemy import Connection, update

from backend.storage.schema import rate_limits
from backend.storage.unique import insert_if_absent


def hit(connection: Connection, key: str, limit: int, window: int, now: int) -> int | None:
    """Count one attempt for ``key``; None if allowed, else the seconds until it would be.

    Each step is one conditional statement, so concurrent callers never both take
    the last place in a window.
    """
    start = now - now % window
    table = rate_limits.c
    taken = connection.execute(
        update(rate_limits)
        .where(table.key == key, table.window_start == start, table.count < limit)
        .values(count=table.count + 1)
    )
    if taken.rowcount == 1:
        return None
    if _open_window(connection, key, start):
        return None
    return start + window - now


def _open_window(connection: Connection, key: str, start: int) -> bool:
    """Start the counter, or restart it if its window has passed; False if at the limit."""
    if insert_if_absent(connection, rate_limits, {"key": key, "window_start": start, "count": 1}):
        return True
    table = rate_limits.c
    restarted = connection.execute(
        update(rate_limits)
        .where(table.key == key, table.window_start < start)
        .values(window_start=start, count=1)
    )
    return restarted.rowcount == 1
