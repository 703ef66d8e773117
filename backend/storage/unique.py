"""Inserting a row that a unique key may already hold: the database decides who was first."""

from typing import Any

from sqlalchemy import Connection, CursorResult, Table, insert
from sqlalchemy.exc import IntegrityError


def insert_unless_present(
    connection: Connection, table: Table, row: dict[str, Any]
) -> CursorResult[Any] | None:
    """Insert ``row``; None if a unique key says it is there already.

    The insert runs in a savepoint, so a refused one leaves the caller's transaction usable
    (on MySQL and SQLite alike).
    """
    try:
        with connection.begin_nested():
            return connection.execute(insert(table).values(row))
    except IntegrityError:
        return None
