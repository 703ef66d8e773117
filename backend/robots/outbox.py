"""The robot_messages table: what each robot is to be told, claimed into digests, sent once."""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, select, update

from backend.storage.schema import robot_messages
from backend.storage.unique import insert_unless_present
from backend.subjects import Subject


@dataclass(frozen=True)
class RobotMessage:
    """One event for one robot, as recorded."""

    id: int
    robot: str
    event: str
    about: Subject
    facts: dict[str, Any]
    recorded_at: datetime
    batch: int | None
    sent_at: datetime | None

    @classmethod
    def from_row(cls, row: RowMapping) -> "RobotMessage":
        """From a robot_messages row."""
        return cls(
            id=row["id"],
            robot=row["robot"],
            event=row["event"],
            about=Subject(row["about_type"], row["about_id"]),
            facts=json.loads(row["facts"] or "{}"),
            recorded_at=row["recorded_at"],
            batch=row["batch"],
            sent_at=row["sent_at"],
        )


def record(
    connection: Connection,
    robot: str,
    event: str,
    about: Subject,
    now: datetime,
    facts: dict[str, Any] | None = None,
) -> int | None:
    """Record a message in the caller's transaction; None if it was recorded before."""
    row = {
        "robot": robot,
        "event": event,
        "about_type": about.type,
        "about_id": about.id,
        "facts": json.dumps(facts or {}, ensure_ascii=False),
        "recorded_at": now,
    }
    return insert_unless_present(connection, robot_messages, row)


def get(connection: Connection, message_id: int) -> RobotMessage:
    """The message ``message_id``; LookupError if there is none."""
    row = (
        connection.execute(select(robot_messages).where(robot_messages.c.id == message_id))
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise LookupError(f"robot message {message_id} does not exist")
    return RobotMessage.from_row(row)


def claim(connection: Connection, message: RobotMessage, batch: int, most: int) -> None:
    """Put ``message`` and the robot's other unclaimed messages (oldest first, ``most`` in all)
    into ``batch``. A conditional update: a message another batch took stays in that one."""
    table = robot_messages.c
    others = select(table.id).where(
        table.robot == message.robot, table.batch.is_(None), table.id != message.id
    )
    ids = [message.id, *connection.execute(others.order_by(table.id).limit(most - 1)).scalars()]
    connection.execute(
        update(robot_messages).where(table.id.in_(ids), table.batch.is_(None)).values(batch=batch)
    )


def release(connection: Connection, robot: str, batch_id: int, ids: list[int]) -> None:
    """Take ``ids`` back out of ``batch_id``, unsent, for a later batch to carry."""
    table = robot_messages.c
    connection.execute(
        update(robot_messages)
        .where(table.robot == robot, table.batch == batch_id, table.id.in_(ids))
        .values(batch=None)
    )


def batch(connection: Connection, robot: str, batch_id: int) -> list[RobotMessage]:
    """The messages ``batch_id`` carries, oldest first."""
    table = robot_messages.c
    query = select(robot_messages).where(table.robot == robot, table.batch == batch_id)
    rows = connection.execute(query.order_by(table.id)).mappings()
    return [RobotMessage.from_row(row) for row in rows]


def mark_sent(connection: Connection, robot: str, batch_id: int, now: datetime) -> None:
    """The robot took the batch."""
    table = robot_messages.c
    connection.execute(
        update(robot_messages)
        .where(table.robot == robot, table.batch == batch_id, table.sent_at.is_(None))
        .values(sent_at=now)
    )
