"""Fixed-window counters in the database, so limits hold across function instances."""

from sqlalchemy import Connection, Insert, case, select, update
from sqlalchemy.dialects import mysql, sqlite

from backend.storage.schema import rate_limits


def hit(connection: Connection, key: str, limit: int, window: int, now: int) -> int | None:
    """Count one attempt for ``key``; None if allowed, else the seconds until it would be.

    One upsert counts the attempt (restarting a window that has passed), so concurrent
    callers never both take the last place and no savepoint is needed. An attempt over the
    limit is counted too: the caller refuses it and its transaction rolls the count back.
    """
    start = now - now % window
    connection.execute(_count(connection.dialect.name, key, start))
    query = select(rate_limits.c.count).where(rate_limits.c.key == key)
    counted = connection.execute(query).scalar_one()
    return None if counted <= limit else start + window - now


def give_back(connection: Connection, key: str, window: int, now: int) -> None:
    """Uncount one attempt of ``key`` in the window ``now`` falls in (one that succeeded)."""
    table = rate_limits.c
    connection.execute(
        update(rate_limits)
        .where(table.key == key, table.window_start == now - now % window, table.count > 0)
        .values(count=table.count - 1)
    )


def _count(dialect: str, key: str, start: int) -> Insert:
    table = rate_limits.c
    row = {"key": key, "window_start": start, "count": 1}
    counted = case((table.window_start == start, table.count + 1), else_=1)
    if dialect == "mysql":
        # MySQL assigns left to right, reading values already assigned: the count goes first.
        on_mysql = mysql.insert(rate_limits).values(row)
        return on_mysql.on_duplicate_key_update([("count", counted), ("window_start", start)])
    on_sqlite = sqlite.insert(rate_limits).values(row)
    return on_sqlite.on_conflict_do_update(
        index_elements=[table.key], set_={"count": counted, "window_start": start}
    )
