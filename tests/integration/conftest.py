"""Fixtures for tests on real stores: SQLite and the MariaDB at 127.0.0.1:3306, each fresh."""

import json
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import Engine, create_engine, event, text
from werkzeug.serving import make_server

from backend.app import create_app
from backend.config import Config
from backend.jobs.model import Job, Outcome
from backend.jobs.registry import JobKind, Registry
from backend.signed_requests import CLIENT_IP, IDEMPOTENCY_KEY, SIGNATURE, TIMESTAMP, signature
from backend.storage import migrate
from backend.storage.database import MYSQL_CONNECT_ARGS, Database, make_engine
from backend.storage.schema import metadata
from frontend.backend_pool import BackendPool
from tests.conftest import CATALOGUE, a_form  # noqa: F401 -- tests import it from here

MARIADB = "mysql+pymysql://root@127.0.0.1:3306"
SECRET = "test-proxy-secret"
DECISION_JOBS = "select count(*) from jobs where kind <> 'open_instance'"
"""The work an approval decision records (intake records an open_instance job of its own)."""
CLIENT = "203.0.113.7"


def kinds_of(**handlers: Callable[[Job], Outcome]) -> Registry[None]:
    """A registry of job kinds for a test: kind=function of the job (no services)."""
    kinds: Registry[None] = Registry()
    for name, handler in handlers.items():
        kinds.add(JobKind(name, lambda services, job, handler=handler: handler(job)))
    return kinds


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(
    scope="session",
    params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)],
)
def database_url(request, tmp_path_factory) -> Iterator[str]:
    """A freshly migrated database for this test run, once per kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db')}/dingpass.db"
        migrate.upgrade(make_engine(url))
        yield url
        return
    name = f"dingpass_test_{secrets.token_hex(4)}"
    admin = create_engine(f"{MARIADB}/test")
    with admin.begin() as connection:
        connection.execute(
            text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        )
    try:
        migrate.upgrade(make_engine(f"{MARIADB}/{name}"))
        yield f"{MARIADB}/{name}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP DATABASE {name}"))
        admin.dispose()


@pytest.fixture
def database(database_url) -> Iterator[Database]:
    """The test database, every table emptied first."""
    db = Database(database_url)
    with db.transaction() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())
    yield db
    db.dispose()


@contextmanager
def statements_sent(engine: Engine) -> Iterator[list[str]]:
    """Every statement sent through ``engine`` meanwhile, in order, as it grows."""
    sent: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


@contextmanager
def meanwhile(
    target: object, sent: Callable[[str], bool], action: Callable[[], None], before: bool = False
) -> Iterator[list[bool]]:
    """Do ``action`` once, as the first statement ``sent`` picks goes through ``target`` (an
    engine, or Engine for every one): another process's work between two of this one's
    statements, done after that statement (``before``: just before it). Yields whether it was
    done."""
    done: list[bool] = []
    name = "before_cursor_execute" if before else "after_cursor_execute"

    def hook(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if not done and sent(statement):
            done.append(True)  # first: the action's own statements pass through here too
            action()

    event.listen(target, name, hook)
    try:
        yield done
    finally:
        event.remove(target, name, hook)


@pytest.fixture(params=["OFF", "ON"])
def snapshot_isolation(request, database, database_url, monkeypatch) -> Iterator[Database]:
    """Another pool on the MariaDB test database, its sessions with innodb_snapshot_isolation
    off (as set) and on: on, an update or locking read of a row changed since the transaction's
    snapshot rolls the transaction back (1020), MariaDB's default from 11.6.2."""
    if database.engine.dialect.name != "mysql":
        pytest.skip("SQLite's writers take turns: nothing changes under a transaction")
    if request.param == "ON":
        with database.transaction() as connection:
            found = connection.exec_driver_sql("SHOW VARIABLES LIKE 'innodb_snapshot_isolation'")
            if found.first() is None:
                pytest.skip("this server has no innodb_snapshot_isolation")
        setting = f"{MYSQL_CONNECT_ARGS['init_command']}, innodb_snapshot_isolation = ON"
        monkeypatch.setitem(MYSQL_CONNECT_ARGS, "init_command", setting)
    isolated = Database(database_url)
    yield isolated
    isolated.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def config(database_url) -> Config:
    return Config(
        database_url=database_url,
        proxy_secret=SECRET,
        catalogue_file=CATALOGUE,
        public_base_url="https://apply.example.com",
        rate_limit_per_ip=5,
        rate_limit_per_email=3,
    )


@pytest.fixture
def backend(config, database, clock):
    """The backend app on the test database."""
    app = create_app(config, clock=clock)
    yield app
    app.extensions["database"].dispose()


def signed(
    method: str,
    path: str,
    body: bytes = b"",
    ip: str = CLIENT,
    at: float | None = None,
    secret: str = SECRET,
    key: str | None = None,
) -> dict[str, str]:
    """Headers of a request signed as the frontend signs it, with idempotency ``key`` if given."""
    stamp = str(int(time.time() if at is None else at))
    mac = signature(secret.encode(), method, path, stamp, ip, key, body)
    headers = {
        TIMESTAMP: stamp,
        CLIENT_IP: ip,
        SIGNATURE: mac,
        "Content-Type": "application/json",
    }
    return headers | ({IDEMPOTENCY_KEY: key} if key is not None else {})


class SignedClient:
    """Sends requests to a backend app signed as the frontend signs them."""

    def __init__(self, app) -> None:
        self.client = app.test_client()

    def post(self, path: str, data: object, ip: str = CLIENT, key: str | None = None):
        """POST ``data`` as JSON, signed; ``key`` goes as the idempotency key."""
        body = json.dumps(data).encode()
        return self.client.post(path, data=body, headers=signed("POST", path, body, ip, key=key))

    def get(self, path: str):
        return self.client.get(path, headers=signed("GET", path))


@pytest.fixture
def api(backend) -> SignedClient:
    """Signed requests to the backend: api.post(path, json) / api.get(path)."""
    return SignedClient(backend)


class LiveServer:
    """A WSGI app served on a free loopback port in a thread."""

    def __init__(self, app) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def live_backend(backend) -> Iterator[LiveServer]:
    server = LiveServer(backend)
    yield server
    server.stop()


@pytest.fixture
def pending(api, database, clock):
    """An application waiting for approval instance pi-0001; its status token."""
    from sqlalchemy import select

    from backend.storage.applications import mark_pending
    from backend.storage.schema import applications

    token = api.post("/applications", a_form()).get_json()["token"]
    with database.transaction() as connection:
        found = connection.execute(
            select(applications.c.id).where(applications.c.token == token)
        ).scalar()
        assert mark_pending(connection, found, "pi-0001", clock())
    return token


APP_KEY, APP_SECRET, PROCESS_CODE = (
    "dingpassappkey000001",
    "sandbox-app-secret",
    "PROC-DINGPASS-0001",
)


@pytest.fixture
def sandbox():
    """The DingTalk sandbox on a free loopback port (no event delivery unless a test sets it)."""
    from sandbox.server import Sandbox, SandboxSettings

    server = Sandbox(SandboxSettings(APP_KEY, APP_SECRET, PROCESS_CODE)).start()
    yield server
    server.stop()


@pytest.fixture
def dingtalk(sandbox, database, clock):
    """Our DingTalk client, pointed at the sandbox."""
    from backend.dingtalk.client import DingTalkClient

    return DingTalkClient(sandbox.url, APP_KEY, APP_SECRET, database, clock)


ROBOT_SECRET = "SECb0f8c7d2e3a4b5c6d7e8f90123456789abcdef0123456789abcdef01234567"
"""The 加签 secret of robot_mail's DingTalk robot."""


@pytest.fixture
def robot_mail(clock):
    """The mail sandbox on the test's clock: SMTP, a signed DingTalk robot "dt" (token T) and
    a WeCom robot "wc" (key K)."""
    from sandbox.mail import MailSandbox

    mail = MailSandbox(clock=lambda: clock().timestamp()).start()
    mail.robots.add_dingtalk("T", secret=ROBOT_SECRET, name="dt")
    mail.robots.add_wecom("K", name="wc")
    yield mail
    mail.stop()


def faults(sandbox, **switches) -> None:
    """Switch sandbox faults on for the next calls or events."""
    import requests

    requests.post(f"{sandbox.url}/sandbox/faults", json=switches, timeout=5).raise_for_status()


@pytest.fixture
def dingtalk_config(config, sandbox):
    """The test config, with DingTalk pointed at the sandbox and a callback subscription."""
    import dataclasses

    return dataclasses.replace(
        config,
        dingtalk_app_key=APP_KEY,
        dingtalk_app_secret=APP_SECRET,
        dingtalk_process_code=PROCESS_CODE,
        dingtalk_originator_user_id="manager01",
        dingtalk_api_base=sandbox.url,
        dingtalk_oapi_base=sandbox.url,
        dingtalk_callback_token="dingpass2026tok",
        dingtalk_callback_aes_key="dP7s3kQ9vX2mL8nR4tY6wZ1aB5cD0eF3gH7jK9pQ2rS",
    )


@pytest.fixture
def approving_api(dingtalk_config, database, clock):
    """The backend with DingTalk configured: submitting opens an approval instance.

    Its kick runs the due jobs before the answer, where a deployment's wakes a runner: what
    the runner does is then done when a test reads it.
    """
    app = create_app(
        dingtalk_config, clock=clock, kick=lambda: app.extensions["runner"]().run_due()
    )
    yield SignedClient(app)
    app.extensions["database"].dispose()


class KeptAliveServer:
    """An HTTP/1.1 server on loopback that keeps connections open and notes which one each
    request came on. Paths: ``/close`` answers and then closes its end, as a server whose
    idle timeout has passed; ``/last`` answers with ``Connection: close``; ``/slow`` takes a
    second; any other path answers at once."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        ports: list[int] = []
        self.ports = ports

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 -- http.server's name
                ports.append(self.client_address[1])
                if self.path == "/slow":
                    time.sleep(1)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                if self.path == "/last":
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(b"ok")
                self.close_connection = self.path in ("/close", "/last")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def connections(self) -> int:
        """How many connections the requests so far came on."""
        return len(set(self.ports))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def kept_alive() -> Iterator[KeptAliveServer]:
    server = KeptAliveServer()
    yield server
    server.stop()


@pytest.fixture
def pool_for() -> Iterator[Callable[..., BackendPool]]:
    """Pools of connections to a URL (timeouts, size and TLS context as given), closed after."""
    pools: list[BackendPool] = []

    def pool(
        url: str,
        read_timeout: float = 2.0,
        connect_timeout: float = 1.0,
        size: int = 4,
        tls: ssl.SSLContext | None = None,
    ) -> BackendPool:
        pools.append(BackendPool(url, connect_timeout, read_timeout, size, tls))
        return pools[-1]

    yield pool
    for each in pools:
        each.close()
