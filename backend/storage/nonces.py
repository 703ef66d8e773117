"""Callback nonces seen within the tolerance window, so a replayed request is refused."""

from datetime import datetime, timedelta

from sqlalchemy import Connection, delete

from backend.storage.schema import callback_nonces
from backend.storage.unique import insert_if_absent


def first_sighting(connection: Connection, key: str, now: datetime, keep: timedelta) -> bool:
    """Record ``key``; False if it was recorded before. Forgets keys older than ``keep``."""
    connection.execute(delete(callback_nonces).where(callback_nonces.c.seen_at < now - keep))
    return insert_if_absent(connection, callback_nonces, {"key": key, "seen_at": now})


def forget(connection: Connection, key: str) -> None:
    """Let ``key`` be seen again (its request failed before it was handled)."""
    connection.execute(delete(callback_nonces).where(callback_nonces.c.key == key))
