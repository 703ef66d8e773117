"""Callback nonces seen within the tolerance window, so a replayed request is refused."""

from datetime import datetime

from sqlalchemy import Connection, delete

from backend.storage.schema import callback_nonces
from backend.storage.unique import insert_if_absent


def first_sighting(connection: Connection, key: str, now: datetime) -> bool:
    """Record ``key``; False if it was recorded before."""
    return insert_if_absent(connection, callback_nonces, {"key": key, "seen_at": now})


def forget_before(connection: Connection, moment: datetime) -> None:
    """Forget the keys seen before ``moment``.

    Call it in a transaction of its own: the range delete locks the index gap up to the
    newest key, and two pushes that each purge and then insert in one transaction deadlock
    on MySQL (each waits to insert into the gap the other locked).
    """
    connection.execute(delete(callback_nonces).where(callback_nonces.c.seen_at < moment))


def forget(connection: Connection, key: str) -> None:
    """Let ``key`` be seen again (its request failed before it was handled)."""
    connection.execute(delete(callback_nonces).where(callback_nonces.c.key == key))
