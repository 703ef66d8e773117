"""Every process writes one log format: the functions under ./bootstrap, `dingpass dev` and the
CLI. key=value lines with the request id, no terminal escape codes, no SMTP small talk."""

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from sqlalchemy import insert

from backend.approvals.dispatcher import Dispatcher
from backend.approvals.events import ApprovalEvent
from backend.storage.applications import mark_pending
from backend.storage.database import Database
from backend.storage.schema import applications
from tests.conftest import CATALOGUE, DEV_FORM, running_dev
from tests.integration.test_functions import Function
from tests.integration.test_functions import environment as environment  # the fixture
from tests.integration.test_migrations import ROW

LINE = re.compile(
    r"time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=(DEBUG|INFO|WARNING|ERROR|CRITICAL)"
    r" logger=\S+ request_id=\S+ msg=.*"
)
MADE_UP_ID = r"[0-9a-f]{16}"
SCRIPT = Path(sys.executable).with_name("dingpass")


def odd_lines(log: str) -> list[str]:
    """The lines of ``log`` that are not in the format, or carry an escape code."""
    return [line for line in log.splitlines() if not LINE.fullmatch(line) or "\x1b" in line]


@pytest.fixture
def start(environment):
    started: list[Function] = []

    def run(name: str, **extra: str) -> Function:
        started.append(Function(name, {**environment, **extra}))
        return started[-1]

    yield run
    for function in started:
        if function.process.poll() is None:
            function.stop()


@pytest.fixture
def a_refusal_to_mail(environment) -> None:
    """Work for the runner: a refusal whose mail cannot go out (nothing listens on port 9)."""
    database = Database(environment["DATABASE_URL"])
    with database.transaction() as connection:
        connection.execute(insert(applications).values(ROW))
        mark_pending(connection, 1, "pi-1", ROW["created_at"])
    Dispatcher(database, lambda: ROW["created_at"]).dispatch(
        ApprovalEvent("pi-1", "finish", "refuse", "http")
    )
    database.dispose()


@pytest.mark.parametrize("name", ["frontend", "backend", "approval", "runner"])
def test_a_function_writes_only_lines_in_the_format(start, name):
    function = start(name)
    function.lifecycle(
        lambda url: requests.get(f"{url}/healthz", headers={"x-fc-request-id": "1-ab"}, timeout=5)
    )
    function.stop()
    log = function.log.read_text()
    assert odd_lines(log) == []
    assert 'logger=gunicorn.access request_id=1-ab msg=127.0.0.1 "GET /healthz' in log


def test_a_request_s_own_lines_carry_fc_s_request_id(start, a_refusal_to_mail):
    function = start("runner", SMTP_PORT="9")
    requests.post(f"{function.url}/invoke", headers={"x-fc-request-id": "req-7f3a"}, timeout=30)
    function.stop()
    log = function.log.read_text()
    assert odd_lines(log) == []  # the failed mail's error and its traceback too
    assert "logger=runner.app request_id=req-7f3a msg=runner invoked by" in log
    assert 'request_id=req-7f3a msg=127.0.0.1 "POST /invoke HTTP/1.1" 200' in log


def test_the_frontend_s_own_lines_carry_fc_s_request_id(start):
    backend = start("backend")
    frontend = start("frontend", BACKEND_URL=backend.url, PROXY_SECRET="not-the-backend-s")
    requests.post(
        f"{frontend.url}/api/applications",
        json=DEV_FORM,
        headers={"x-fc-request-id": "req-9e1d"},
        timeout=30,
    )
    frontend.stop()
    log = frontend.log.read_text()
    assert odd_lines(log) == []
    assert "level=ERROR logger=frontend.app request_id=req-9e1d msg=the backend refused" in log


def test_without_fc_s_id_a_request_s_lines_share_one_made_up(start):
    function = start("runner")
    requests.post(f"{function.url}/invoke", timeout=30)
    function.stop()
    log = function.log.read_text()
    own = re.search(rf"logger=runner.app request_id=({MADE_UP_ID}) msg=runner invoked", log)
    assert own and f'request_id={own.group(1)} msg=127.0.0.1 "POST /invoke' in log


def until(condition: Callable[[], object], seconds: float = 10) -> object:
    """What ``condition`` answers once it answers something, within ``seconds``."""
    deadline = time.monotonic() + seconds
    while not (answer := condition()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return answer


def delivered(base: str, console: str, token: str) -> bool:
    """Approve the application's instance in the console; whether its license mail went out."""
    instance = re.compile(r'data-instance="([^"]+)"')
    opened = until(lambda: instance.search(requests.get(console, timeout=5).text))
    assert isinstance(opened, re.Match), "no instance was opened in the DingTalk sandbox"
    requests.post(f"{console}/console/{opened.group(1)}/approve", timeout=5).raise_for_status()
    status = f"{base}/api/applications/{token}"
    return bool(until(lambda: requests.get(status, timeout=5).json()["status"] == "delivered"))


def test_dev_writes_only_lines_in_the_format_and_no_smtp_dialogue(tmp_path):
    with (
        (tmp_path / "stderr.log").open("w") as log,
        running_dev(tmp_path, stderr=log) as (_, printed),
    ):
        base = re.search(r"Apply page\s+(\S+)", printed).group(1).split("/apply")[0]
        console = re.search(r"Approver\s+(\S+)", printed).group(1).rstrip("/")
        token = requests.post(f"{base}/api/applications", json=DEV_FORM, timeout=5).json()["token"]
        assert delivered(base, console, token)
        time.sleep(0.5)  # the mail sandbox logs a connection's end after the client has gone
    lines = (tmp_path / "stderr.log").read_text()
    assert odd_lines(lines) == []
    assert re.search(
        rf'logger=werkzeug request_id={MADE_UP_ID} msg=.*"POST /api/applications', lines
    )
    assert "logger=mail.log" not in lines and "connection lost" not in lines.lower()


def dingpass(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CATALOGUE_FILE": str(CATALOGUE),
        "DINGPASS_VAR_DIR": str(tmp_path / "var"),
    }
    done = subprocess.run(
        [SCRIPT, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.parametrize("args", [["db", "upgrade"], ["config", "check"]])
def test_a_command_s_output_has_no_alembic_lines(tmp_path, args):
    dingpass(tmp_path, "db", "upgrade")  # config check reads the schema's revision
    done = dingpass(tmp_path, *args)
    assert "alembic" not in done.stdout + done.stderr
    assert "Context impl" not in done.stdout + done.stderr


def test_verbose_shows_alembic_s_steps_in_the_format(tmp_path):
    done = dingpass(tmp_path, "-v", "db", "upgrade")
    assert "logger=alembic.runtime.migration request_id=- msg=Running upgrade" in done.stderr
    assert odd_lines(done.stderr) == []
