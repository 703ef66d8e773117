"""The database connection pool: one engine per function instance, built from the config."""

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from backend.exceptions import ConfigError

T = TypeVar("T")
PING_IDLE = 1.0
"""Seconds a pooled MySQL connection may sit idle and be used unchecked (see _ping_when_idle)."""
POOL_RECYCLE = 280
"""Seconds: below MySQL's and NAT gateways' idle cut-offs, since FC instances freeze."""
SQLITE_BUSY_TIMEOUT_MS = 30_000
"""Writers queue for the lock (BEGIN IMMEDIATE); under a burst one may wait its turn a while."""
MYSQL_CONNECT_ARGS = {
    "connect_timeout": 3,
    "read_timeout": 10,
    "write_timeout": 10,
    # Below the read timeout, so that a lock wait ends as MySQL's 1205, which is retried, not
    # as a dropped connection.
    "init_command": "SET SESSION innodb_lock_wait_timeout = 5",
}
"""Timeouts in seconds: a hung database fails a request instead of holding its worker for ever."""
TLS_SETTINGS = ("ssl", "read_default_")
"""DATABASE_URL's query keys that may set TLS up, which SQLAlchemy hands to PyMySQL: ssl_ca,
ssl_capath, ssl_cert, ssl_key, ssl_cipher, ssl_check_hostname, and an option file
(read_default_file, read_default_group) whose ssl-* options PyMySQL reads. With any of them
PyMySQL decides; without, the connection is plain TCP (see _connect_args)."""
COMMITTED = "dingpass.committed"
"""Marks a pooled connection whose transaction Database.transaction committed: MySQL's pool
then hands it back without a ROLLBACK (_roll_back_unless_committed). SQLite's rolls back
always, which costs nothing there: the mark is not read."""
RETRIED_ERRORS = frozenset({1020, 1205, 1213})
"""The transaction failed in a way that running it again may mend: MySQL's lock wait timeout
(1205) and deadlock (1213), and MariaDB's "record has changed since last read" (1020: an update
or locking read of a row changed since the transaction's snapshot, under
innodb_snapshot_isolation, on by default from MariaDB 11.6.2)."""
RETRIED_AT_ONCE = frozenset({1020, 1213})
"""Those that come at once: a lock wait has taken innodb_lock_wait_timeout (5 s) already, more
than a caller with a deadline (DingTalk waits 1.5 s for a callback's answer) can give again."""
TRANSACTION_ATTEMPTS = 4


class Database:
    """A pooled engine and the transactions everything runs in."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection in a transaction: committed on success, rolled back on error."""
        with self.engine.connect() as connection:
            with connection.begin() as transaction:
                yield connection
                # Ended inside the block (a rollback() or commit() of its own): whatever ran
                # since, on the raw connection, is unknown, so the pool rolls it back.
                ours = transaction.is_active
            if ours:
                connection.info[COMMITTED] = True

    def run(
        self,
        work: Callable[[Connection], T],
        attempts: int = TRANSACTION_ATTEMPTS,
        retried: frozenset[int] = RETRIED_ERRORS,
    ) -> T:
        """``work`` in a transaction, run again from the start after one of the ``retried``
        errors (see RETRIED_ERRORS; RETRIED_AT_ONCE for a caller with a deadline).

        MySQL's documentation asks applications to retry a transaction chosen as a deadlock
        victim (1213) or timed out waiting for a lock (1205); ``work`` must only touch the
        database, so that running it again is safe.
        """
        for attempt in range(1, attempts + 1):
            try:
                with self.transaction() as connection:
                    return work(connection)
            except DBAPIError as err:
                if attempt == attempts or not rolled_back(err, retried):
                    raise
            time.sleep(random.uniform(0.005, 0.05) * attempt)  # noqa: S311 -- jitter, not secrecy
        raise AssertionError("unreachable: the last attempt returns or raises")

    def dispose(self) -> None:
        """Close every pooled connection (FC's pre-stop hook; tests)."""
        self.engine.dispose()


def make_engine(url: str) -> Engine:
    """An engine for SQLite or MySQL/MariaDB, checking pooled connections that sat idle."""
    try:
        parsed = make_url(url)
    except Exception as err:  # sqlalchemy raises ArgumentError, and ValueError for bad ports
        raise ConfigError(f"DATABASE_URL cannot be parsed: {err}") from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed.database)
    if parsed.get_backend_name() == "mysql":
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
        engine = create_engine(
            parsed,
            pool_recycle=POOL_RECYCLE,
            pool_reset_on_return=None,  # not after a commit: _roll_back_unless_committed
            connect_args=_connect_args(parsed),
            hide_parameters=True,  # an error's log line must not carry a row's tokens and emails
        )
        _ping_when_idle(engine)
        _roll_back_unless_committed(engine)
        return engine
    raise ConfigError(f"DATABASE_URL: use sqlite:/// or mysql+pymysql://, not {parsed.drivername}")


def _connect_args(url: URL) -> dict[str, object]:
    """PyMySQL's arguments for ``url``: the timeouts, and plain TCP unless the URL asks for TLS.

    Left alone, PyMySQL 2.2 tries TLS on every connection without checking the server's
    certificate, which a man in the middle defeats (or strips: the server's offer is in clear).
    To do so it loads the system's whole CA list, which it then never uses: a connection takes
    18 ms of CPU here instead of 0.3 ms, near 0.2 s on FC's smallest instance, at every cold start
    and every new pooled connection. TLS is the URL's to ask for: ``?ssl_ca=`` a CA file, and
    the server's certificate and name are checked against it (docs/deploy.md, step 3)."""
    if any(key.startswith(TLS_SETTINGS) for key in url.query):
        return dict(MYSQL_CONNECT_ARGS)
    return {**MYSQL_CONNECT_ARGS, "ssl_disabled": True}


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use if it sat idle: it may have died meanwhile.

    An FC instance frozen between requests, a database restarted or failed over, a NAT
    gateway's idle cut: each leaves a connection that fails only when used. SQLAlchemy's
    pool_pre_ping would check it on every checkout, a round trip per transaction; a connection
    handed back moments ago is alive, so only one idle longer than PING_IDLE is checked.
    """

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection, record):  # type: ignore[no-untyped-def]
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection, record, _proxy):  # type: ignore[no-untyped-def]
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_IDLE:
            return
        try:
            dbapi_connection.ping(reconnect=False)
        except Exception as err:  # noqa: BLE001 -- any failure means: get a fresh connection
            # The pool closes this connection and tries another (SQLAlchemy's documented way).
            raise exc.DisconnectionError(f"a pooled connection died while idle: {err}") from err


def _roll_back_unless_committed(engine: Engine) -> None:
    """Roll back a connection handed back to the pool, unless Database.transaction committed it.

    SQLAlchemy's pool would roll back every one, a ROLLBACK sent and answered after each COMMIT:
    a round trip more per transaction on MySQL. Any other use (a failed commit, a migration, raw
    DBAPI work, a connection the garbage collector found) is rolled back as before.
    """

    @event.listens_for(engine, "reset")
    def _reset(dbapi_connection, record, state):  # type: ignore[no-untyped-def]
        committed = record is not None and record.info.pop(COMMITTED, False)
        if not (committed or state.transaction_was_reset):
            dbapi_connection.rollback()


def _sqlite_engine(database: str | None) -> Engine:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    # A file never drops the connection: no ping.
    engine = create_engine(f"sqlite:///{database or ''}", hide_parameters=True)

    @event.listens_for(engine, "connect")
    def _pragmas(connection, _record):  # type: ignore[no-untyped-def]
        # The sqlite3 module would begin transactions itself, and only before INSERT, UPDATE
        # and DELETE: a transaction opened by a SAVEPOINT, or holding DDL, was committed
        # piecemeal. It keeps its hands off; SQLAlchemy's begin says BEGIN (SQLAlchemy's
        # documented recipe for pysqlite).
        connection.isolation_level = None
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # a reader outside a transaction never waits
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):  # type: ignore[no-untyped-def]
        # IMMEDIATE takes the write lock at once, so two transactions that read and then write
        # queue up on busy_timeout instead of one failing with "database is locked".
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def rolled_back(error: DBAPIError, retried: frozenset[int] = RETRIED_ERRORS) -> bool:
    """Whether ``error`` is one of the ``retried``: the transaction may run again from the start.

    Inside a savepoint the deadlock surfaces as 1305 (the savepoint is gone with the
    transaction) raised while handling it: the cause is looked for down the chain.
    """
    seen: BaseException | None = error
    while seen is not None:
        code = getattr(getattr(seen, "orig", seen), "args", (None,))[:1]
        if code and code[0] in retried:
            return True
        seen = seen.__context__
    return False
