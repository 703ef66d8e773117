"""Inserting a row that a unique key may already hold: the database decides who was first."""

import functools
from typing import Any

from sqlalchemy import Connection, CursorResult, Insert, Table, insert
from sqlalchemy.exc import IntegrityError


def insert_unless_present(connection: Connection, table: Table, row: dict[str, Any]) -> int | None:
    """Insert ``row`` into a table with an integer id; its id, or None if it is there already."""
    result = _insert(connection, table, row)
    if result is None:
        return None
    (new_id,) = result.inserted_primary_key or (None,)
    if not isinstance(new_id, int):
        raise TypeError(f"{table.name} has no integer id: use insert_if_absent")
    return new_id


def insert_new(connection: Connection, table: Table, row: dict[str, Any]) -> int:
    """Insert ``row``, which no unique key can hold yet, into a table with an integer id; its id."""
    (new_id,) = connection.execute(_insert_into(table), row).inserted_primary_key or (None,)
    if not isinstance(new_id, int):
        raise TypeError(f"{table.name} has no integer id")
    return new_id


def insert_if_absent(connection: Connection, table: Table, row: dict[str, Any]) -> bool:
    """Insert ``row`` into any table; False if a unique key says it is there already."""
    return _insert(connection, table, row) is not None


def _insert(connection: Connection, table: Table, row: dict[str, Any]) -> CursorResult[Any] | None:
    # No savepoint: MySQL (InnoDB) and SQLite undo a refused statement alone, and the caller's
    # transaction goes on with its earlier work. A savepoint would cost two more round trips
    # for every insert (12 of an approval's 58 statements) and mend nothing a single-row
    # statement can leave half done.
    try:
        return connection.execute(insert(table).values(row))
    except IntegrityError:
        return None


@functools.cache
def _insert_into(table: Table) -> Insert:
    # One statement per table, its values given with each execution (so plain values only): it
    # keeps its cache key, where one built with .values(row) on every call coerces each value
    # and keys it anew. insert_new stores every application, its first status and its job.
    return insert(table)
