"""Fixed-window counters in the database, so limits hold across function instances."""

from sqlalchemy import Connection, TextClause, select, text, update

from backend.storage.schema import rate_limits


def hit(connection: Connection, key: str, limit: int, window: int, now: int) -> int | None:
    """Count one attempt for ``key``; None if allowed, else the seconds until it would be.

    One upsert counts the attempt (restarting a window that has passed), so concurrent
    callers never both take the last place and no savepoint is needed. An attempt over the
    limit is counted too: the caller refuses it and its transaction rolls the count back.
    """
    start = now - now % window
    connection.execute(*_count(connection.dialect.name, key, start))
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


def _count(dialect: str, key: str, start: int) -> tuple[TextClause, dict[str, object]]:
    # Written out: SQLAlchemy compiles its MySQL upsert construct anew on every call (it has no
    # cache key), and this runs twice for every application.
    return (_UPSERT_MYSQL if dialect == "mysql" else _UPSERT_SQLITE), {"key": key, "start": start}


# MySQL assigns left to right, reading values already assigned: the count goes first.
_UPSERT_MYSQL = text(
    "INSERT INTO rate_limits (`key`, window_start, count) VALUES (:key, :start, 1) "
    "ON DUPLICATE KEY UPDATE count = IF(window_start = :start, count + 1, 1), "
    "window_start = :start"
)
_UPSERT_SQLITE = text(
    "INSERT INTO rate_limits (key, window_start, count) VALUES (:key, :start, 1) "
    "ON CONFLICT (key) DO UPDATE SET "
    "count = CASE WHEN window_start = :start THEN count + 1 ELSE 1 END, window_start = :start"
)
