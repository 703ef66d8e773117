"""The API applications: who may call the signed API, each with a key, a secret and scopes."""

import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import Connection, RowMapping, func, select, update

from backend.apps.errors import AppNameRefused, NoSuchApp, ScopesRefused
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
SCOPES = ("changes", "codes.generate", "codes.query", "codes.redeem", "codes.delete")
"""What an application may be allowed to do, each a part of the API."""
DEFAULT_SCOPES = frozenset({"changes"})
"""What a new application may do unless told otherwise (all an app could do before scopes)."""


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
    scopes: frozenset[str] = DEFAULT_SCOPES

    @property
    def enabled(self) -> bool:
        """Whether the application may call."""
        return self.disabled_at is None

    def may(self, scope: str) -> bool:
        """Whether the application is allowed ``scope`` (one of SCOPES)."""
        return scope in self.scopes

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
            scopes=read_scopes(row["scopes"]),
        )


def create(
    connection: Connection, name: str, now: datetime, scopes: frozenset[str] = DEFAULT_SCOPES
) -> ApiApp:
    """A new application with a fresh key and secret, allowed ``scopes``.

    AppNameRefused if the name cannot be; ScopesRefused if a scope is unknown or none is given.
    """
    _check_name(name)
    _check_scopes(scopes)
    taken = _by_name(connection, name)
    if taken is not None:
        raise AppNameRefused(
            f"an API application is already named {taken.name!r} (names ignore case)"
        )
    secret = secrets.token_hex(SECRET_BYTES)
    for _ in range(KEY_ATTEMPTS):
        key = new_key()
        row = {
            "app_key": key,
            "secret": secret,
            "name": name,
            "created_at": now,
            "scopes": write_scopes(scopes),
        }
        new_id = insert_unless_present(connection, api_apps, row)
        if new_id is not None:
            return ApiApp(new_id, key, name, now, None, secret, frozenset(scopes))
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
    return by_id(connection, app.id)


def enable(connection: Connection, name_or_key: str) -> ApiApp:
    """Take the application's requests again; NoSuchApp if there is none."""
    app = find(connection, name_or_key)
    connection.execute(update(api_apps).where(api_apps.c.id == app.id).values(disabled_at=None))
    return by_id(connection, app.id)


def allow(connection: Connection, name_or_key: str, scopes: frozenset[str]) -> ApiApp:
    """Set what the application may do to ``scopes`` (not added: replaced); NoSuchApp if none."""
    _check_scopes(scopes)
    app = find(connection, name_or_key)
    connection.execute(
        update(api_apps).where(api_apps.c.id == app.id).values(scopes=write_scopes(scopes))
    )
    return by_id(connection, app.id)


def parse_scopes(text: str) -> frozenset[str]:
    """The scopes typed as ``changes,codes.redeem``; ScopesRefused if one is unknown or none is."""
    scopes = frozenset(part.strip() for part in text.split(",") if part.strip())
    _check_scopes(scopes)
    return scopes


def read_scopes(stored: str) -> frozenset[str]:
    """The scopes as the scopes column holds them (comma-separated)."""
    return frozenset(part for part in stored.split(",") if part)


def write_scopes(scopes: frozenset[str]) -> str:
    """The scopes as the scopes column holds them, in SCOPES' order."""
    return ",".join(scope for scope in SCOPES if scope in scopes)


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


def by_id(connection: Connection, app_id: int, with_secret: bool = False) -> ApiApp:
    """The application numbered ``app_id`` (with its secret: to sign what is sent to it)."""
    row = connection.execute(select(api_apps).where(api_apps.c.id == app_id)).mappings().one()
    return ApiApp.from_row(row, with_secret)


def _check_name(name: str) -> None:
    if not NAME.fullmatch(name) or name.isdigit():
        raise AppNameRefused(
            f"{name!r} cannot be an application's name: use 1 to 64 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit, and not only digits (those are keys)"
        )


def _check_scopes(scopes: frozenset[str]) -> None:
    known = ", ".join(SCOPES)
    unknown = sorted(scopes - set(SCOPES))
    if unknown:
        shown = ", ".join(map(repr, unknown))
        raise ScopesRefused(f"unknown scope(s) {shown}: choose among {known}")
    if not scopes:
        raise ScopesRefused(f"give at least one scope, comma-separated, among {known}")
