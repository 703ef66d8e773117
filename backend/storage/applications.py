"""Stored applications and their status timelines."""

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from backend.applications.validation import ApplicationForm
from backend.storage.schema import application_events, applications


@dataclass(frozen=True)
class NewApplication:
    """What is stored about an application when it arrives."""

    form: ApplicationForm
    number: str
    token: str
    client_ip: str
    at: datetime


def insert_application(connection: Connection, new: NewApplication, status: str) -> int:
    """Store a new application with its first timeline entry; return its id."""
    row = {
        **asdict(new.form),
        "number": new.number,
        "token": new.token,
        "status": status,
        "client_ip": new.client_ip,
        "created_at": new.at,
        "updated_at": new.at,
    }
    result = connection.execute(insert(applications).values(row))
    (application_id,) = result.inserted_primary_key or (None,)
    if application_id is None:
        raise RuntimeError("the database gave the new application no id")
    add_event(connection, application_id, status, new.at)
    return int(application_id)


def add_event(connection: Connection, application_id: int, status: str, at: datetime) -> None:
    """Append a status to an application's timeline."""
    event = {"application_id": application_id, "status": status, "at": at}
    connection.execute(insert(application_events).values(event))


def find_by_token(connection: Connection, token: str) -> dict[str, Any] | None:
    """The application behind a public status token, with its timeline, or None."""
    row = connection.execute(select(applications).where(applications.c.token == token)).mappings()
    found = row.first()
    if found is None:
        return None
    events = connection.execute(
        select(application_events.c.status, application_events.c.at)
        .where(application_events.c.application_id == found["id"])
        .order_by(application_events.c.id)
    ).mappings()
    return {**found, "timeline": [dict(event) for event in events]}


def mark_pending(
    connection: Connection, application_id: int, instance_id: str, at: datetime
) -> bool:
    """submitted -> pending with its DingTalk instance; False if it had moved on already."""
    table = applications.c
    changed = connection.execute(
        update(applications)
        .where(
            table.id == application_id,
            table.status == "submitted",
            table.instance_id.is_(None),
        )
        .values(status="pending", instance_id=instance_id, updated_at=at)
    )
    if changed.rowcount != 1:
        return False
    add_event(connection, application_id, "pending", at)
    return True


def by_id(connection: Connection, application_id: int) -> dict[str, Any] | None:
    """One application's row, or None."""
    row = connection.execute(select(applications).where(applications.c.id == application_id))
    found = row.mappings().first()
    return dict(found) if found else None


def waiting_for_instance(connection: Connection) -> list[int]:
    """Applications stored but without an approval instance yet, oldest first."""
    table = applications.c
    query = (
        select(table.id)
        .where(table.status == "submitted", table.instance_id.is_(None))
        .order_by(table.id)
    )
    return list(connection.execute(query).scalars())


def pending_since(connection: Connection, before: datetime) -> list[str]:
    """Instance ids of applications pending since before ``before``."""
    table = applications.c
    query = select(table.instance_id).where(table.status == "pending", table.updated_at < before)
    return [instance for instance in connection.execute(query).scalars() if instance]


def transition(
    connection: Connection, application_id: int, before: str, after: str, at: datetime
) -> bool:
    """before -> after, with a timeline entry; False if the application was not in ``before``."""
    table = applications.c
    changed = connection.execute(
        update(applications)
        .where(table.id == application_id, table.status == before)
        .values(status=after, updated_at=at)
    )
    if changed.rowcount != 1:
        return False
    add_event(connection, application_id, after, at)
    return True
