"""Issued licenses (one per application) and the mails sent about them (one of each kind)."""

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from backend.storage.schema import licenses, mails
from backend.storage.unique import insert_unless_present


def license_of(connection: Connection, application_id: int) -> Any | None:
    """The license issued for an application, or None."""
    return connection.execute(
        select(licenses).where(licenses.c.application_id == application_id)
    ).first()


def store_license(connection: Connection, row: dict[str, Any]) -> bool:
    """Store a new license; False if the application has one already (a job ran twice)."""
    return insert_unless_present(connection, licenses, row) is not None


def mail_record(
    connection: Connection,
    application_id: int,
    kind: str,
    message_id: str,
    recipient: str,
) -> Any:
    """The record of an application's mail of ``kind``, made on first use."""
    where = (mails.c.application_id == application_id, mails.c.kind == kind)
    found = connection.execute(select(mails).where(*where)).first()
    if found is not None:
        return found
    row = {
        "application_id": application_id,
        "kind": kind,
        "message_id": message_id,
        "recipient": recipient,
    }
    insert_unless_present(connection, mails, row)  # or another runner made it just now
    return connection.execute(select(mails).where(*where)).one()


def mark_sent(connection: Connection, mail_id: int, at: datetime) -> None:
    """Record that the mail server accepted the mail."""
    connection.execute(
        update(mails).where(mails.c.id == mail_id, mails.c.sent_at.is_(None)).values(sent_at=at)
    )
