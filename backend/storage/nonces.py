"""Callback nonces seen within the tolerance window, so a replayed request is refused."""

from datetime import datetime

from sqlalchemy import Connection, delete

from backend.storage.schema import callback_nonces
from backend.storage.unique import insert_if_absent


def first_sighting(connection: Connection, key: str, now: datetime) -> bool:
    """Record ``key``; False if it was recorded before."""
    return insert_if_absent(connection, callback_nonces, {"key": key, "seen_at": now})


APP_PREFIX = "app:"
"""Keys of API applications' nonces start so; DingTalk callbacks' are "timestamp:nonce"."""


def forget_before(connection: Connection, moment: datetime, *, apps: bool = False) -> None:
    """Forget the callback keys (or with ``apps``, the applications' keys) seen before ``moment``.

    Each kind keeps its keys for its own window: the callbacks' tolerance and the
    applications' 15 minutes differ, and neither purge may cut the other's short.

    Call it in a transaction of its own: the range delete locks the index gap up to the
    newest key, and two pushes that each purge and then insert in one transaction deadlock
    on MySQL (each waits to insert into the gap the other locked).
    """
    own = callback_nonces.c.key.like(f"{APP_PREFIX}%")
    connection.execute(
        delete(callback_nonces).where(callback_nonces.c.seen_at < moment, own if apps else ~own)
    )


def forget(connection: Connection, key: str) -> None:
    """Let ``key`` be seen again (its request failed before it was handled)."""
    connection.execute(delete(callback_nonces).where(callback_nonces.c.key == key))
