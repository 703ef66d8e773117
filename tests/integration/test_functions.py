"""Each function started exactly as Function Compute starts it: ./bootstrap NAME, gunicorn on a
port, then FC's lifecycle hooks around a real request."""

import json
import os
import subprocess
import sys
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
            except requests.ConnectionError:
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
    assert (
        "[req-7f3a]: runner invoked by every-minute: ran 1 job(s)" in log
    )  # FC's request id on our line
    assert (
        '"POST /invoke HTTP/1.1" 200' in log and "fc-request-id=req-7f3a" in log
    )  # and on the access line
