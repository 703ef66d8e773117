"""Each function started exactly as Function Compute starts it: ./bootstrap NAME, gunicorn on a
port, then FC's lifecycle hooks around a real request."""

import contextlib
import itertools
import json
import os
import re
import secrets
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import insert

from backend.approvals.dispatcher import Dispatcher
from backend.approvals.events import ApprovalEvent
from backend.storage import migrate
from backend.storage.applications import mark_pending
from backend.storage.database import Database, make_engine
from backend.storage.schema import applications
from frontend.config import STATIC_DIR
from sandbox import callback_crypto as dingtalk
from sandbox.mail import MailSandbox
from tests.conftest import CATALOGUE, ROOT, free_port
from tests.integration.conftest import SECRET, signed
from tests.integration.test_callback import AES_KEY, APP_KEY, TOKEN
from tests.integration.test_migrations import ROW


@pytest.fixture
def environment(tmp_path):
    """What the descriptors would give every function, on a fresh SQLite database."""
    database = f"sqlite:///{tmp_path}/dingpass.db"
    migrate.upgrade(make_engine(database))
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "DATABASE_URL": database,
        "PROXY_SECRET": SECRET,
        "CATALOGUE_FILE": str(CATALOGUE),
        "DINGPASS_VAR_DIR": str(tmp_path / "var"),
        "DINGTALK_APP_KEY": APP_KEY,
        "DINGTALK_CALLBACK_TOKEN": TOKEN,
        "DINGTALK_CALLBACK_AES_KEY": AES_KEY,
        "GUNICORN_WORKERS": "1",
    }


class Function:
    """One function served by ./bootstrap on a free loopback port."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        # template.yml names the function in DINGPASS_FUNCTION (FC 2.0 passes no arguments);
        # s.yaml passes it.
        command = [str(ROOT / "bootstrap")] + ([] if env.get("DINGPASS_FUNCTION") else [name])
        self.log = Path(env["DINGPASS_VAR_DIR"]).parent / f"{name}-{port}.log"
        with self.log.open("w") as output:
            self.process = subprocess.Popen(
                command,
                env={**env, "DINGPASS_BIND": f"127.0.0.1:{port}"},
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.url}/healthz", timeout=1)
                return
            except (requests.ConnectionError, requests.Timeout):  # not up, or still booting
                time.sleep(0.1)
        self.process.kill()
        pytest.fail(f"{name} did not start: {self.log.read_text()}")

    def lifecycle(self, request) -> requests.Response:
        """POST /initialize, the request, GET /pre-stop: as FC calls an instance."""
        assert requests.post(f"{self.url}/initialize", timeout=5).status_code == 200
        answer = request(self.url)
        assert requests.get(f"{self.url}/pre-stop", timeout=5).status_code == 200
        return answer

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def start(environment):
    started = []

    def run(name: str, **extra: str) -> Function:
        started.append(Function(name, {**environment, **extra}))
        return started[-1]

    yield run
    for function in started:
        function.stop()


def test_the_frontend_serves_the_page(start):
    if not (STATIC_DIR / "index.html").exists():
        pytest.fail("the page is not built: run `make test`")
    answer = start("frontend").lifecycle(
        lambda url: requests.get(f"{url}/apply?product=acme-erp&feature=X", timeout=5)
    )
    assert answer.status_code == 200 and '<div id="app">' in answer.text


def test_the_backend_takes_a_signed_application(start):
    body = json.dumps(
        {
            "product": "acme-erp",
            "feature_code": "9F2C-41AB-77D0-E5C3",
            "company": "示例",
            "contact": "张三",
            "email": "z@example.com",
            "quantity": 5,
            "validity": "1y",
        }
    ).encode()
    answer = start("backend").lifecycle(
        lambda url: requests.post(
            f"{url}/applications",
            data=body,
            headers=signed("POST", "/applications", body),
            timeout=5,
        )
    )
    assert answer.status_code == 201 and answer.json()["number"].startswith("A")


def test_the_approval_function_answers_a_signed_callback(start):
    encrypted = dingtalk.seal(AES_KEY, APP_KEY, '{"EventType":"check_url"}')
    stamp = str(int(time.time() * 1000))
    query = {
        "msg_signature": dingtalk.msg_signature(TOKEN, stamp, "n0nce", encrypted),
        "timestamp": stamp,
        "nonce": "n0nce",
    }
    answer = start("approval", DINGPASS_FUNCTION="approval").lifecycle(
        lambda url: requests.post(
            f"{url}/dingtalk/callback", params=query, json={"encrypt": encrypted}, timeout=5
        )
    )
    assert answer.status_code == 200
    assert dingtalk.unseal(AES_KEY, APP_KEY, answer.json()["encrypt"]) == "success"


def test_the_runner_runs_due_jobs_on_a_timer_event(start, environment):
    database = Database(environment["DATABASE_URL"])
    with database.transaction() as connection:
        connection.execute(insert(applications).values(ROW))
        mark_pending(connection, 1, "pi-1", ROW["created_at"])
    Dispatcher(database, lambda: ROW["created_at"]).dispatch(
        ApprovalEvent("pi-1", "finish", "refuse", "http")
    )
    mail = MailSandbox().start()
    try:
        timer = {
            "triggerTime": "2026-11-23T08:00:00Z",
            "triggerName": "every-minute",
            "payload": "",
        }
        runner = start("runner", SMTP_PORT=str(mail.smtp_port))
        answer = runner.lifecycle(
            lambda url: requests.post(
                f"{url}/invoke",
                json=timer,
                timeout=30,
                headers={"x-fc-request-id": "req-7f3a"},
            )
        )
    finally:
        mail.stop()
    assert answer.status_code == 200 and answer.json() == {
        "ran": 1,
        "source": "every-minute",
    }
    assert [m["to"] for m in mail.mailbox.summary()] == [ROW["email"]]
    runner.stop()
    log = runner.log.read_text()
    # FC's request id on our line, and on the access line
    assert "request_id=req-7f3a msg=runner invoked by every-minute: ran 1 job(s)" in log
    access = [line for line in log.splitlines() if '"POST /invoke HTTP/1.1" 200' in line]
    assert len(access) == 1 and "request_id=req-7f3a" in access[0]


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("frontend", "/status/"),
        ("frontend", "/api/applications/"),
        ("backend", "/applications/"),
    ],
)
def test_access_lines_carry_only_the_start_of_a_status_token(start, name, path):
    token = secrets.token_urlsafe(24)
    function = start(name, BACKEND_URL=f"http://127.0.0.1:{free_port()}")
    requests.get(f"{function.url}{path}{token}", timeout=10)
    function.stop()
    log = function.log.read_text()
    assert f'"GET {path}{token[:4]}… HTTP/1.1"' in log
    assert token not in log


SLOW_CLIENTS = 8  # twice the threads of the tests' one worker, and of bootstrap's 1 x 4
SLOW_HEAD = b"GET /healthz HTTP/1.1\r\nHost: slow\r\n\r\n"
SLOW_POST = b"POST /api/applications HTTP/1.1\r\nHost: slow\r\nContent-Length: 64\r\n\r\n"
SLOW_CHUNKED = (
    b"POST /api/applications HTTP/1.1\r\nHost: slow\r\nTransfer-Encoding: chunked\r\n\r\n"
)


def port_of(function: Function) -> int:
    """The loopback port ``function`` listens on."""
    return int(function.url.rsplit(":", 1)[1])


HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


def closing(request: bytes) -> bytes:
    """``request``, asking the server to close the connection once it has answered."""
    return request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)


def slow_clients(port: int) -> list[tuple[socket.socket, bytes]]:
    """Connections and what each will trickle: their head, a sized body, or a chunked body."""
    clients = []
    for number in range(SLOW_CLIENTS):
        connection = socket.create_connection(("127.0.0.1", port))
        if number % 3 == 1:
            connection.sendall(SLOW_POST)
            clients.append((connection, b"{" * 64))
        elif number % 3 == 2:
            connection.sendall(SLOW_CHUNKED)
            clients.append((connection, b"2\r\n{}\r\n" * 8 + b"0\r\n\r\n"))
        else:
            clients.append((connection, SLOW_HEAD))
    return clients


def trickle(clients: list[tuple[socket.socket, bytes]], stop: threading.Event) -> None:
    """One byte on every connection every two seconds, until the server has answered it."""
    for at in itertools.count():
        for connection, rest in clients:
            if answered(connection):
                continue
            with contextlib.suppress(OSError):  # closed by the server: what the test waits for
                connection.send(rest[at : at + 1])
        if stop.wait(2):
            return


def answered(connection: socket.socket) -> bool:
    """Whether the server has sent something or closed: a byte sent after its close would
    reset the connection, and the client would lose the answer it has not read yet."""
    with contextlib.suppress(OSError):
        return bool(select.select([connection], [], [], 0)[0])
    return True


def until_closed(connection: socket.socket) -> bytes:
    """What the server sends before it closes the connection (a timeout if it never does)."""
    connection.settimeout(15)
    received = b""
    while chunk := connection.recv(1024):
        received += chunk
    return received


def test_slow_clients_hold_no_worker_thread_and_are_closed_in_the_end(start):
    function = start("frontend")
    clients = slow_clients(port_of(function))
    stop = threading.Event()
    threading.Thread(target=trickle, args=(clients, stop), daemon=True).start()
    try:
        time.sleep(3)  # each has sent part of its request: a thread that took one waits on it
        assert requests.get(f"{function.url}/healthz", timeout=2).status_code == 200
        answers = {until_closed(connection) for connection, _ in clients}
    finally:
        stop.set()
        for connection, _ in clients:
            connection.close()
    assert answers == {
        b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    }


def test_a_body_larger_than_any_function_takes_is_refused_unread(start):
    function = start("frontend")
    with socket.create_connection(("127.0.0.1", port_of(function))) as connection:
        connection.sendall(
            b"POST /api/applications HTTP/1.1\r\nHost: big\r\nContent-Length: 20000\r\n\r\n"
        )
        answer = until_closed(connection)
    assert answer.startswith(b"HTTP/1.1 413 ")


def test_a_client_that_waits_for_100_continue_is_told_to_go_on(start):
    function = start("frontend")
    with socket.create_connection(("127.0.0.1", port_of(function))) as connection:
        connection.sendall(
            b"POST /api/applications HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"
        )
        connection.settimeout(5)
        assert connection.recv(1024).startswith(b"HTTP/1.1 100 Continue")
        connection.sendall(b"{}")
        answer = until_closed(connection)
    final = answer[answer.rfind(b"HTTP/1.1 ") :].split(b"\r\n", 1)[0]
    assert final.split()[1] not in (b"100", b"408")  # the app read the body and answered it


def statuses(answers: bytes) -> list[bytes]:
    """The status codes of the answers one connection received, in order."""
    return re.findall(rb"HTTP/1\.1 (\d{3}) ", answers)


def test_pipelined_requests_are_each_answered_in_turn(start):
    function = start("frontend")
    with socket.create_connection(("127.0.0.1", port_of(function))) as connection:
        connection.sendall(HEALTHZ + closing(HEALTHZ))
        assert statuses(until_closed(connection)) == [b"200", b"200"]


def test_a_pipelined_request_too_large_is_refused_at_once(start):
    function = start("frontend")
    with socket.create_connection(("127.0.0.1", port_of(function))) as connection:
        connection.sendall(
            HEALTHZ + b"POST /api/applications HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n"
        )
        assert statuses(until_closed(connection)) == [b"200", b"413"]  # not 408, ten s later


def test_a_pipelined_request_that_waits_for_100_continue_is_told_to_go_on(start):
    function = start("frontend")
    with socket.create_connection(("127.0.0.1", port_of(function))) as connection:
        connection.sendall(
            HEALTHZ + b"POST /api/applications HTTP/1.1\r\nHost: x\r\nContent-Type: "
            b"application/json\r\nExpect: 100-continue\r\nContent-Length: 2\r\n"
            b"Connection: close\r\n\r\n"
        )
        connection.settimeout(5)
        received = b""
        while b"100 Continue" not in received:
            received += connection.recv(1024)
        connection.sendall(b"{}")
        answers = statuses(received + until_closed(connection))
    # gunicorn's thread says 100 Continue again, as it may: the last answer is the app's own.
    assert answers[:2] == [b"200", b"100"] and answers[-1] not in (b"100", b"408")


def test_a_kept_alive_request_that_comes_in_pieces_is_answered_when_whole(start):
    function = start("frontend")
    with socket.create_connection(("127.0.0.1", port_of(function))) as connection:
        connection.sendall(HEALTHZ)
        connection.settimeout(5)
        assert statuses(connection.recv(1024)) == [b"200"]
        last = closing(HEALTHZ)
        for piece in (last[:7], last[7:20], last[20:]):
            connection.sendall(piece)
            time.sleep(0.2)  # each piece on its own: the worker reads it and waits for more
        assert statuses(until_closed(connection)) == [b"200"]


DATA_SEGMENTS_IN = 152
"""Where Linux's struct tcp_info keeps tcpi_data_segs_in: the segments received with data."""


def data_segments_received(connection: socket.socket) -> int:
    """How many TCP segments with data ``connection`` has received."""
    info = connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return int(struct.unpack_from("I", info, DATA_SEGMENTS_IN)[0])


@pytest.mark.parametrize("path", ["/healthz", "/favicon.ico"])  # a JSON answer, a file answer
def test_an_answer_reaches_its_client_in_one_segment(start, path):
    function = start("frontend")
    with socket.create_connection(("127.0.0.1", port_of(function))) as connection:
        connection.sendall(closing(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()))
        assert statuses(until_closed(connection)) == [b"200"]
        assert data_segments_received(connection) == 1  # gunicorn alone sends head, then body


def test_a_kept_alive_connection_serves_one_request_after_another(start):
    function = start("frontend")
    with requests.Session() as session:
        answers = [session.get(f"{function.url}/healthz", timeout=5) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    log = function.log.read_text()
    assert log.count('"GET /healthz HTTP/1.1" 200') >= 3


def test_a_worker_keeps_its_heartbeat_idle_and_busy(start):
    function = start("frontend", GUNICORN_TIMEOUT="2")
    time.sleep(2.5)  # idle: the loop turns once a second
    with requests.Session() as session:
        for _ in range(3):  # a request just before each beat is due: the longest gaps
            time.sleep(0.9)
            assert session.get(f"{function.url}/healthz", timeout=5).status_code == 200
        busy_until = time.monotonic() + 2
        while time.monotonic() < busy_until:  # busy: the loop turns on every request
            assert session.get(f"{function.url}/healthz", timeout=5).status_code == 200
    log = function.log.read_text()
    assert "WORKER TIMEOUT" not in log and log.count("Booting worker") == 1
