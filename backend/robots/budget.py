"""A robot's budget of sends, counted in the database so that it holds across runners.

Each robot has one row per message it may take in a window (20 a minute), holding when that
place was last used. A send takes the place used longest ago, if that was a whole window ago,
with a conditional update: of two runners after one place, one wins, the other tries the next.
The budget is a sliding window, as the robots count, not a fixed minute (where 20 at the end of
one minute and 20 at the start of the next would be 40 in sixty seconds).
"""

from datetime import datetime, timedelta, timezone

from sqlalchemy import Connection, func, select, update

from backend.storage.schema import robot_slots
from backend.storage.unique import insert_if_absent

NEVER = datetime(1970, 1, 1, tzinfo=timezone.utc)
SOONEST = timedelta(seconds=1)


def take(
    connection: Connection, robot: str, now: datetime, places: int, window: timedelta
) -> timedelta | None:
    """Take one place in ``robot``'s budget: None if taken, else how long until one frees."""
    taken = place(connection, robot, now, places, window)
    return taken if isinstance(taken, timedelta) else None


def place(
    connection: Connection, robot: str, now: datetime, places: int, window: timedelta
) -> int | timedelta:
    """Take one place in ``robot``'s budget: its number, or how long until one frees."""
    _provide(connection, robot, places)
    table = robot_slots.c
    query = select(table.slot, table.used_at).where(table.robot == robot, table.slot < places)
    for slot, used_at in connection.execute(query.order_by(table.used_at, table.slot)).all():
        if used_at > now - window:
            left: timedelta = used_at + window - now
            return max(left, SOONEST)  # the oldest is still in the window
        taken = connection.execute(
            update(robot_slots)
            .where(table.robot == robot, table.slot == slot, table.used_at == used_at)
            .values(used_at=now)
        )
        if taken.rowcount == 1:
            return int(slot)
    return SOONEST  # every free place went to other runners meanwhile


def stamp(connection: Connection, robot: str, slot: int, now: datetime) -> None:
    """Move the place ``slot``, taken in this transaction, to ``now``: when its send goes."""
    table = robot_slots.c
    connection.execute(
        update(robot_slots).where(table.robot == robot, table.slot == slot).values(used_at=now)
    )


def _provide(connection: Connection, robot: str, places: int) -> None:
    """Make the robot's places, the first time it sends (or after its budget grew)."""
    count = select(func.count()).where(robot_slots.c.robot == robot, robot_slots.c.slot < places)
    if connection.execute(count).scalar_one() >= places:
        return
    for slot in range(places):
        insert_if_absent(connection, robot_slots, {"robot": robot, "slot": slot, "used_at": NEVER})
