"""The database connection pool: one engine per function instance, built from the config."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from backend.exceptions import ConfigError

POOL_RECYCLE = 280
"""Seconds: below MySQL's and NAT gateways' idle cut-offs, since FC instances freeze."""
SQLITE_BUSY_TIMEOUT_MS = 5000


class Database:
    """A pooled engine and the transactions everything runs in."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection in a transaction: committed on success, rolled back on error."""
        with self.engine.begin() as connection:
            yield connection

    def dispose(self) -> None:
        """Close every pooled connection (FC's pre-stop hook; tests)."""
        self.engine.dispose()


def make_engine(url: str) -> Engine:
    """An engine for SQLite or MySQL/MariaDB, pre-pinging pooled connections."""
    try:
        parsed = make_url(url)
    except Exception as err:  # sqlalchemy raises ArgumentError, and ValueError for bad ports
        raise ConfigError(f"DATABASE_URL cannot be parsed: {err}") from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed.database)
    if parsed.get_backend_name() == "mysql":
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
        return create_engine(parsed, pool_pre_ping=True, pool_recycle=POOL_RECYCLE)
    raise ConfigError(f"DATABASE_URL: use sqlite:/// or mysql+pymysql://, not {parsed.drivername}")


def _sqlite_engine(database: str | None) -> Engine:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{database or ''}", pool_pre_ping=True)

    @event.listens_for(engine, "connect")
    def _pragmas(connection, _record):  # type: ignore[no-untyped-def]
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine
