"""Code batches and activation codes in the database (SQLAlchemy Core)."""

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, and_, case, func, insert, select, update

from backend.storage.schema import activation_codes, code_batches

INSERT_CHUNK = 1000
"""Rows per INSERT: a batch of 100,000 codes goes in bounded memory and few round trips."""


@dataclass(frozen=True)
class Batch:
    """A batch as recorded."""

    id: int
    public_id: str
    product: str
    quantity: int
    validity: str
    valid_from: datetime
    valid_until: datetime
    note: str
    size: int
    app_id: int | None
    created_at: datetime
    deleted_at: datetime | None

    @classmethod
    def from_row(cls, row: RowMapping) -> "Batch":
        """From a code_batches row."""
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class CodeRecord:
    """One activation code as recorded (never the code itself), with its batch."""

    id: int
    batch: Batch
    redeemed_at: datetime | None
    application_id: int | None
    redeemed_by: str | None
    deleted_at: datetime | None


def new_batch_id() -> str:
    """A batch's id for people and partners: random, so ids tell nothing of other batches."""
    return f"bat-{secrets.token_hex(8)}"


def insert_batch(connection: Connection, **values: Any) -> Batch:
    """Record a batch (its codes go in with insert_hashes); the batch as recorded."""
    row = {"public_id": new_batch_id(), **values}
    (batch_id,) = connection.execute(insert(code_batches).values(row)).inserted_primary_key or (
        None,
    )
    return batch_by_id(connection, int(batch_id or 0))


def insert_hashes(connection: Connection, batch_id: int, hashes: Sequence[str]) -> None:
    """Record codes of a batch by their hashes, INSERT_CHUNK rows to a statement."""
    for start in range(0, len(hashes), INSERT_CHUNK):
        rows = [
            {"batch_id": batch_id, "code_hash": h} for h in hashes[start : start + INSERT_CHUNK]
        ]
        connection.execute(insert(activation_codes), rows)


def batch_by_id(connection: Connection, batch_id: int) -> Batch:
    """The batch numbered ``batch_id``."""
    query = select(code_batches).where(code_batches.c.id == batch_id)
    return Batch.from_row(connection.execute(query).mappings().one())


def batch_by_public_id(connection: Connection, public_id: str) -> Batch | None:
    """The batch called ``public_id``, or None."""
    query = select(code_batches).where(code_batches.c.public_id == public_id)
    row = connection.execute(query).mappings().first()
    return None if row is None else Batch.from_row(row)


def batches(connection: Connection, app_id: int | None = None) -> list[Batch]:
    """Every batch (or an app's), deleted ones too, newest first."""
    query = select(code_batches).order_by(code_batches.c.id.desc())
    if app_id is not None:
        query = query.where(code_batches.c.app_id == app_id)
    return [Batch.from_row(row) for row in connection.execute(query).mappings()]


def by_hash(connection: Connection, code_hash: str) -> CodeRecord | None:
    """The code whose keyed hash is ``code_hash``, with its batch; None if unknown."""
    codes = activation_codes
    query = (
        select(
            code_batches,
            codes.c.id.label("code_id"),
            codes.c.redeemed_at,
            codes.c.deleted_at.label("code_deleted_at"),
            codes.c.application_id,
            codes.c.redeemed_by,
        )
        .select_from(codes.join(code_batches, code_batches.c.id == codes.c.batch_id))
        .where(codes.c.code_hash == code_hash)
    )
    row = connection.execute(query).mappings().first()
    if row is None:
        return None
    return CodeRecord(
        id=row["code_id"],
        batch=Batch.from_row(row),
        redeemed_at=row["redeemed_at"],
        application_id=row["application_id"],
        redeemed_by=row["redeemed_by"],
        deleted_at=row["code_deleted_at"],
    )


def take(connection: Connection, code_id: int, now: datetime, redeemed_by: str) -> bool:
    """Mark an unused, undeleted code redeemed; False if another redeemer was first.

    One conditional UPDATE: however many redeem at once, the database lets one through.
    """
    taken = connection.execute(
        update(activation_codes)
        .where(
            activation_codes.c.id == code_id,
            activation_codes.c.redeemed_at.is_(None),
            activation_codes.c.deleted_at.is_(None),
        )
        .values(redeemed_at=now, redeemed_by=redeemed_by[:64])
    )
    return taken.rowcount == 1


def attach_application(connection: Connection, code_id: int, application_id: int) -> None:
    """Record the application (and so the license) a redeemed code made."""
    connection.execute(
        update(activation_codes)
        .where(activation_codes.c.id == code_id)
        .values(application_id=application_id)
    )


def delete_code(connection: Connection, code_id: int, now: datetime) -> bool:
    """Delete an unredeemed code (idempotent); whether it was deleted just now.

    Conditional on the code being unredeemed, as take is on its being undeleted: of a delete
    and a redemption at once, the database lets one through.
    """
    deleted = connection.execute(
        update(activation_codes)
        .where(
            activation_codes.c.id == code_id,
            activation_codes.c.deleted_at.is_(None),
            activation_codes.c.redeemed_at.is_(None),
        )
        .values(deleted_at=now)
    )
    return deleted.rowcount == 1


def delete_batch(connection: Connection, batch_id: int, now: datetime) -> int:
    """Delete a batch and its unredeemed codes (idempotent); how many codes just now.

    A redeemed code stays as it was (redeemed, not deleted): its license stands.
    """
    connection.execute(
        update(code_batches)
        .where(code_batches.c.id == batch_id, code_batches.c.deleted_at.is_(None))
        .values(deleted_at=now)
    )
    deleted = connection.execute(
        update(activation_codes)
        .where(
            activation_codes.c.batch_id == batch_id,
            activation_codes.c.deleted_at.is_(None),
            activation_codes.c.redeemed_at.is_(None),
        )
        .values(deleted_at=now)
    )
    return int(deleted.rowcount)


def counts(connection: Connection, batch_id: int) -> dict[str, int]:
    """A batch's codes by state: redeemed, deleted (unredeemed) and unused."""
    codes = activation_codes
    unredeemed_deleted = case(
        (and_(codes.c.deleted_at.is_not(None), codes.c.redeemed_at.is_(None)), 1), else_=0
    )
    query = select(
        func.count(), func.count(codes.c.redeemed_at), func.sum(unredeemed_deleted)
    ).where(codes.c.batch_id == batch_id)
    total, redeemed, deleted = connection.execute(query).one()
    deleted = int(deleted or 0)
    return {
        "total": total,
        "redeemed": redeemed,
        "deleted": deleted,
        "unused": total - redeemed - deleted,
    }
