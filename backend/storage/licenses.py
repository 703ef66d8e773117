"""Issued licenses: one per application, however often its job runs."""

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Connection, RowMapping, select

from backend.storage.schema import licenses
from backend.storage.unique import insert_if_absent


@dataclass(frozen=True)
class IssuedLicense:
    """A signed license as stored: the file's text and what it was issued for."""

    id: str
    application_id: int
    key_id: str
    text: str
    issued_at: datetime
    valid_until: datetime | None

    @classmethod
    def from_row(cls, row: RowMapping) -> "IssuedLicense":
        """From a licenses row."""
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


def license_of(connection: Connection, application_id: int) -> IssuedLicense | None:
    """The license issued for an application, or None."""
    query = select(licenses).where(licenses.c.application_id == application_id)
    found = connection.execute(query).mappings().first()
    return IssuedLicense.from_row(found) if found else None


def store_license(connection: Connection, issued: IssuedLicense) -> bool:
    """Store a new license; False if the application has one already (a job ran twice)."""
    return insert_if_absent(connection, licenses, asdict(issued))
