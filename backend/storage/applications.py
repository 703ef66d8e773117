"""Stored applications and their status timelines, as frozen records."""

from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import Connection, RowMapping, select, update

from backend.applications.status import ApplicationStatus, check_move
from backend.applications.validation import ApplicationForm
from backend.storage.schema import application_events, applications
from backend.storage.unique import insert_new


@dataclass(frozen=True)
class NewApplication:
    """What is stored about an application when it arrives."""

    form: ApplicationForm
    number: str
    token: str
    client_ip: str
    at: datetime
    idempotency_key: str | None = None
    request_hash: str | None = None


FORM_FIELDS = tuple(field.name for field in fields(ApplicationForm))


@dataclass(frozen=True)
class Application(ApplicationForm):
    """A stored application: the form the customer sent, and where it stands."""

    id: int
    number: str
    token: str
    status: ApplicationStatus
    instance_id: str | None
    client_ip: str
    created_at: datetime
    updated_at: datetime
    idempotency_key: str | None
    request_hash: str | None
    instance_requested_at: datetime | None

    @classmethod
    def from_row(cls, row: RowMapping) -> "Application":
        """From an applications row."""
        values = {name: row[name] for name in cls.__dataclass_fields__}
        return cls(**{**values, "status": ApplicationStatus(row["status"])})


@dataclass(frozen=True)
class TimelineEntry:
    """One status an application reached, and when."""

    status: ApplicationStatus
    at: datetime


def insert_application(connection: Connection, new: NewApplication) -> int:
    """Store a new, submitted application with its first timeline entry; return its id."""
    row = {
        **form_values(new.form),
        "number": new.number,
        "token": new.token,
        "status": ApplicationStatus.SUBMITTED,
        "client_ip": new.client_ip,
        "created_at": new.at,
        "updated_at": new.at,
        "idempotency_key": new.idempotency_key,
        "request_hash": new.request_hash,
    }
    application_id = insert_new(connection, applications, row)
    _add_entry(connection, application_id, ApplicationStatus.SUBMITTED, new.at)
    return application_id


def by_id(connection: Connection, application_id: int, lock: bool = False) -> Application | None:
    """One application, or None.

    ``lock``: read the latest committed row and lock it (MySQL's FOR UPDATE), not the snapshot;
    under snapshot isolation a row changed since the snapshot fails the transaction (1020).
    """
    query = select(applications).where(applications.c.id == application_id)
    if lock:
        query = query.with_for_update()
    found = connection.execute(query).mappings().first()
    return Application.from_row(found) if found else None


def by_token(connection: Connection, token: str) -> Application | None:
    """The application behind a public status token, or None."""
    query = select(applications).where(applications.c.token == token)
    found = connection.execute(query).mappings().first()
    return Application.from_row(found) if found else None


def by_idempotency_key(connection: Connection, key: str) -> Application | None:
    """The application first submitted under ``key``, or None."""
    query = select(applications).where(applications.c.idempotency_key == key)
    found = connection.execute(query).mappings().first()
    return Application.from_row(found) if found else None


def by_number(connection: Connection, number: str) -> Application | None:
    """The application with this number (as the approval form shows it), or None."""
    query = select(applications).where(applications.c.number == number)
    found = connection.execute(query).mappings().first()
    return Application.from_row(found) if found else None


def by_instance(connection: Connection, instance_id: str, lock: bool = False) -> Application | None:
    """The application whose DingTalk approval is ``instance_id``, or None.

    ``lock``: read the latest committed row and lock it (MySQL's FOR UPDATE), not the snapshot.
    """
    query = select(applications).where(applications.c.instance_id == instance_id)
    if lock:
        query = query.with_for_update()
    found = connection.execute(query).mappings().first()
    return Application.from_row(found) if found else None


def timeline(connection: Connection, application_id: int) -> list[TimelineEntry]:
    """Every status an application reached, in order."""
    query = (
        select(application_events.c.status, application_events.c.at)
        .where(application_events.c.application_id == application_id)
        .order_by(application_events.c.id)
    )
    return [
        TimelineEntry(ApplicationStatus(status), at) for status, at in connection.execute(query)
    ]


def mark_pending(
    connection: Connection, application_id: int, instance_id: str, at: datetime
) -> bool:
    """submitted -> pending with its DingTalk instance; False if it had moved on already."""
    check_move(ApplicationStatus.SUBMITTED, ApplicationStatus.PENDING)
    table = applications.c
    changed = connection.execute(
        update(applications)
        .where(
            table.id == application_id,
            table.status == ApplicationStatus.SUBMITTED,
            table.instance_id.is_(None),
        )
        .values(
            status=ApplicationStatus.PENDING,
            instance_id=instance_id,
            instance_requested_at=None,
            updated_at=at,
        )
    )
    if changed.rowcount != 1:
        return False
    _add_entry(connection, application_id, ApplicationStatus.PENDING, at)
    return True


def mark_requested(
    connection: Connection, application_id: int, at: datetime, before: datetime | None
) -> bool:
    """Record that a start request is about to go to DingTalk; False if the record is not
    ``before`` any more (another runner is starting the instance)."""
    table = applications.c
    unchanged = (
        table.instance_requested_at.is_(None)
        if before is None
        else table.instance_requested_at == before
    )
    changed = connection.execute(
        update(applications)
        .where(table.id == application_id, table.instance_id.is_(None), unchanged)
        .values(instance_requested_at=at)
    )
    return changed.rowcount == 1


def unmark_requested(connection: Connection, application_id: int, at: datetime) -> None:
    """Record that the start request marked ``at`` opened nothing (DingTalk said no, or never
    heard). A later mark stays: a runner that took the job over since has sent a start of its
    own, which may be in doubt."""
    table = applications.c
    connection.execute(
        update(applications)
        .where(table.id == application_id, table.instance_id.is_(None))
        .where(table.instance_requested_at == at)
        .values(instance_requested_at=None)
    )


def transition(
    connection: Connection,
    application_id: int,
    before: ApplicationStatus,
    after: ApplicationStatus,
    at: datetime,
) -> bool:
    """before -> after, with a timeline entry; False if the application was not in ``before``.

    IllegalTransition if the state machine has no such move.
    """
    check_move(before, after)
    table = applications.c
    changed = connection.execute(
        update(applications)
        .where(table.id == application_id, table.status == before)
        .values(status=after, updated_at=at)
    )
    if changed.rowcount != 1:
        return False
    _add_entry(connection, application_id, after, at)
    return True


def waiting_for_instance(connection: Connection) -> list[int]:
    """Applications stored but without an approval instance yet, oldest first."""
    table = applications.c
    query = (
        select(table.id)
        .where(table.status == ApplicationStatus.SUBMITTED, table.instance_id.is_(None))
        .order_by(table.id)
    )
    return list(connection.execute(query).scalars())


def pending_since(connection: Connection, before: datetime) -> list[str]:
    """Instance ids of applications pending since before ``before``."""
    table = applications.c
    query = select(table.instance_id).where(
        table.status == ApplicationStatus.PENDING,
        table.updated_at < before,
        table.instance_id.is_not(None),
    )
    return [str(instance) for instance in connection.execute(query).scalars()]


def status_of(connection: Connection, application_id: int) -> ApplicationStatus | None:
    """Where one application stands, or None if there is no such application."""
    query = select(applications.c.status).where(applications.c.id == application_id)
    found = connection.execute(query).scalar()
    return None if found is None else ApplicationStatus(found)


def _add_entry(
    connection: Connection, application_id: int, status: ApplicationStatus, at: datetime
) -> None:
    entry = {"application_id": application_id, "status": status, "at": at}
    insert_new(connection, application_events, entry)


def form_values(form: ApplicationForm) -> dict[str, object]:
    """The form's fields by name (what dataclasses.asdict gives, without its deep copies)."""
    return {name: getattr(form, name) for name in FORM_FIELDS}
