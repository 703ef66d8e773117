"""The API applications: who may call the changes API, each with a key and a secret."""

import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import Connection, RowMapping, func, select, update

from backend.apps.errors import AppNameRefused, NoSuchApp
from backend.storage.schema import api_apps
from backend.storage.unique import insert_unless_present

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""Names as they are typed in a shell; all digits is refused, since that is what keys are."""
KEY_DIGITS = 9
"""AppKeys are numbers of this many digits, as API Gateway's own (203753385)."""
SECRET_BYTES = 16
"""The AppSecret is this many random bytes in hex (32 characters, as API Gateway's)."""
KEY_ATTEMPTS = 5
"""New keys to draw when one is taken, before giving up (a billion keys: never in practice)."""


@dataclass(frozen=True)
class ApiApp:
    """An application that calls the changes API; ``secret`` only where it is needed."""

    id: int
    app_key: str
    name: str
    created_at: datetime
    disabled_at: datetime | None
    secret: str | None = field(default=None, repr=False, compare=False)
    """Set by create (to show once) and by_key (to check a signature); None otherwise."""

    @property
    def enabled(self) -> bool:
        """Whether the application may call."""
        return self.disabled_at is None

    @classmethod
    def from_row(cls, row: RowMapping, with_secret: bool = False) -> "ApiApp":
        """From an api_apps row, with its secret or without."""
        return cls(
            id=row["id"],
            app_key=row["app_key"],
            name=row["name"],
            created_at=row["created_at"],
            disabled_at=row["disabled_at"],
            secret=row["secret"] if with_secret else None,
        )


def create(connection: Connection, name: str, now: datetime) -> ApiApp:
    """A new application with a fresh key and secret; AppNameRefused if the name cannot be."""
    _check_name(name)
    taken = _by_name(connection, name)
    if taken is not None:
        raise AppNameRefused(
            f"an API application is already named {taken.name!r} (names ignore case)"
        )
    secret = secrets.token_hex(SECRET_BYTES)
    for _ in range(KEY_ATTEMPTS):
        key = new_key()
        row = {"app_key": key, "secret": secret, "name": name, "created_at": now}
        new_id = insert_unless_present(connection, api_apps, row)
        if new_id is not None:
            return ApiApp(new_id, key, name, now, None, secret)
        if _by_name(connection, name) is not None:  # taken in the meantime
            raise AppNameRefused(f"an API application is already named {name!r}")
    raise RuntimeError(f"no free app key after {KEY_ATTEMPTS} draws")


def listing(connection: Connection) -> list[ApiApp]:
    """Every application by name, without secrets."""
    rows = connection.execute(select(api_apps).order_by(api_apps.c.name)).mappings()
    return [ApiApp.from_row(row) for row in rows]


def by_key(connection: Connection, key: str) -> ApiApp | None:
    """The application with X-Ca-Key ``key``, with its secret; None if there is none."""
    query = select(api_apps).where(api_apps.c.app_key == key)
    row = connection.execute(query).mappings().first()
    return ApiApp.from_row(row, with_secret=True) if row else None


def disable(connection: Connection, name_or_key: str, now: datetime) -> ApiApp:
    """Refuse the application's requests from now on; NoSuchApp if there is none.

    An application disabled already keeps the moment it was disabled at.
    """
    app = find(connection, name_or_key)
    connection.execute(
        update(api_apps)
        .where(api_apps.c.id == app.id, api_apps.c.disabled_at.is_(None))
        .values(disabled_at=now)
    )
    return _by_id(connection, app.id)


def enable(connection: Connection, name_or_key: str) -> ApiApp:
    """Take the application's requests again; NoSuchApp if there is none."""
    app = find(connection, name_or_key)
    connection.execute(update(api_apps).where(api_apps.c.id == app.id).values(disabled_at=None))
    return _by_id(connection, app.id)


def find(connection: Connection, name_or_key: str) -> ApiApp:
    """The application with that key, or that name in any case; NoSuchApp if none."""
    found = by_key(connection, name_or_key) or _by_name(connection, name_or_key)
    if found is None:
        raise NoSuchApp(name_or_key)
    return replace(found, secret=None)


def new_key() -> str:
    """A random AppKey: KEY_DIGITS digits, the first not 0."""
    low = 10 ** (KEY_DIGITS - 1)
    return str(low + secrets.randbelow(9 * low))


def _by_name(connection: Connection, name: str) -> ApiApp | None:
    # In any case on every database: MySQL's collation ignores case and SQLite's does not.
    query = select(api_apps).where(func.lower(api_apps.c.name) == name.lower())
    row = connection.execute(query).mappings().first()
    return ApiApp.from_row(row) if row else None


def _by_id(connection: Connection, app_id: int) -> ApiApp:
    row = connection.execute(select(api_apps).where(api_apps.c.id == app_id)).mappings().one()
    return ApiApp.from_row(row)


def _check_name(name: str) -> None:
    if not NAME.fullmatch(name) or name.isdigit():
        raise AppNameRefused(
            f"{name!r} cannot be an application's name: use 1 to 64 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit, and not only digits (those are keys)"
        )
