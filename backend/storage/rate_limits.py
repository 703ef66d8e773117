"""Fixed-window counters in the database, so limits hold across function instances."""

import functools
from collections.abc import Sequence

from sqlalchemy import Connection, Select, TextClause, bindparam, select, text, update

from backend.storage.schema import rate_limits

Counter = tuple[str, int]
"""A counter's key and how many attempts its window allows."""


def hit_all(
    connection: Connection, counters: Sequence[Counter], window: int, now: int
) -> int | None:
    """Count one attempt on each of ``counters`` (distinct keys); None if every one allows
    it, else the seconds until all would.

    One upsert counts the attempt on them all (restarting a window that has passed), so
    concurrent callers never both take the last place and no savepoint is needed; one query
    reads the counts back. An attempt over a limit is counted too: the caller refuses it, and
    rolls the count back (intake) or keeps it (the redemption throttle: a guess counts). The
    rows are written, and locked, in the order given: each caller gives its counters in one
    order always (intake: IP, then email; redemption: client, then feature code), so two
    transactions never wait for each other's second row.
    """
    start = now - now % window
    keys = {f"key{n}": key for n, (key, _) in enumerate(counters)}
    connection.execute(_upsert(connection.dialect.name, len(counters)), {**keys, "start": start})
    counts = connection.execute(_counts(len(counters)), keys).one()
    over = any(count > limit for count, (_, limit) in zip(counts, counters, strict=True))
    return start + window - now if over else None


def give_back(connection: Connection, key: str, window: int, now: int) -> None:
    """Uncount one attempt of ``key`` in the window ``now`` falls in (one that succeeded)."""
    table = rate_limits.c
    connection.execute(
        update(rate_limits)
        .where(table.key == key, table.window_start == now - now % window, table.count > 0)
        .values(count=table.count - 1)
    )


@functools.cache
def _upsert(dialect: str, rows: int) -> TextClause:
    # Written out: SQLAlchemy compiles its MySQL upsert construct anew on every call (it has no
    # cache key). Only placeholders are spliced in, one row of them per counter.
    values = ", ".join(f"(:key{n}, :start, 1)" for n in range(rows))
    return text((_UPSERT_MYSQL if dialect == "mysql" else _UPSERT_SQLITE).format(values=values))


# MySQL assigns left to right, reading values already assigned: the count goes first.
_UPSERT_MYSQL = (
    "INSERT INTO rate_limits (`key`, window_start, count) VALUES {values} "
    "ON DUPLICATE KEY UPDATE count = IF(window_start = :start, count + 1, 1), "
    "window_start = :start"
)
_UPSERT_SQLITE = (
    "INSERT INTO rate_limits (key, window_start, count) VALUES {values} "
    "ON CONFLICT (key) DO UPDATE SET "
    "count = CASE WHEN window_start = :start THEN count + 1 ELSE 1 END, window_start = :start"
)


@functools.cache
def _counts(rows: int) -> Select[tuple[int, ...]]:
    # One row of one column per key, in the keys' order: MySQL's collation may give a key back
    # spelt as another row first stored it (an IPv6 address in upper case), so the counts are
    # matched by position, not by the key the row carries.
    table = rate_limits.c
    return select(
        *(
            select(table.count).where(table.key == bindparam(f"key{n}")).scalar_subquery()
            for n in range(rows)
        )
    )
