"""The whole stack under every fault at once, for tests/integration/faults/test_chaos.py.

Everything is real: the backend, frontend and approval functions on loopback, MariaDB behind
a link that is cut and hung, the DingTalk sandbox slow, failing and rate-limiting, the mail
sandbox down, and runner processes killed with SIGKILL.
"""

import dataclasses
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

from approval.app import create_app as create_approval
from backend import defaults
from backend.app import create_app as create_backend
from backend.approvals.dispatcher import Dispatcher
from backend.approvals.reconciler import Reconciler
from backend.approvals.wiring import dingtalk_client
from backend.config import Config
from backend.storage.database import Database
from frontend.app import create_app as create_frontend
from frontend.config import FrontendConfig
from sandbox.delivery import CallbackTarget
from sandbox.mail import MailSandbox
from sandbox.server import Sandbox, SandboxSettings
from tests.conftest import CATALOGUE, ROOT, VECTORS
from tests.integration.conftest import APP_KEY, APP_SECRET, PROCESS_CODE, SECRET, LiveServer, a_form
from tests.integration.faults.proxy import FaultyLink
from tests.integration.test_cli_errors import SCRIPT

CALLBACK_TOKEN, AES_KEY = "dingpass2026tok", "dP7s3kQ9vX2mL8nR4tY6wZ1aB5cD0eF3gH7jK9pQ2rS"
RETRIES = (1, 2, 4, 8)
"""Seconds the client waits before each retry of a submission, as the page does and more."""


@dataclasses.dataclass
class Submission:
    """One customer's application: its key, and every answer it got."""

    n: int
    key: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))
    statuses: list[int] = dataclasses.field(default_factory=list)
    number: str | None = None

    @property
    def email(self) -> str:
        """Each customer's own address: the mailbox tells their mails apart by it."""
        return f"customer{self.n}@example.com"

    @property
    def answered(self) -> bool:
        """Whether it was finally answered 201."""
        return bool(self.statuses) and self.statuses[-1] == 201


class Runners:
    """`dingpass runner` processes, started as the runner function would be, killed at will."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs, self.processes = env, logs, []

    def start(self) -> None:
        """One more runner."""
        command = [str(SCRIPT), "runner"]
        with (self.logs / f"runner-{len(self.processes)}.log").open("w") as log:
            process = subprocess.Popen(command, env=self.env, cwd=ROOT, stdout=log, stderr=log)
        self.processes.append(process)

    def kill_one(self) -> None:
        """SIGKILL the oldest live runner (its leases stay) and start another in its place."""
        victim = next(p for p in self.processes if p.poll() is None)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        self.start()

    def stop(self) -> None:
        """Stop them all."""
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            process.wait(timeout=30)


@dataclasses.dataclass
class Stack:
    """What a chaos run talks to and breaks."""

    config: Config
    link: FaultyLink
    sandbox: Sandbox
    mail: MailSandbox
    frontend_url: str
    runners: Runners

    def submit(self, submission: Submission) -> None:
        """Post through the frontend, retrying under the same key as the page does."""
        body = json.dumps(a_form(email=submission.email, contact=f"客户{submission.n}")).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": submission.key}
        for wait in (*RETRIES, None):
            status, answer = _post(f"{self.frontend_url}/api/applications", body, headers)
            submission.statuses.append(status)
            if status == 201:
                submission.number = answer["number"]
                return
            if wait is None or status not in (0, 502, 503, 504):
                return
            time.sleep(wait)

    def approve_all(self) -> int:
        """Press Approve on every instance still running, as a diligent approver would."""
        pressed = 0
        for instance in list(self.sandbox.state.instances.values()):
            decided = self.sandbox.state.decide(instance.id, "approve")
            if decided is not None:
                self.sandbox.deliverer.publish(decided)
                pressed += 1
        return pressed

    def reconcile(self) -> None:
        """One reconciler pass through the faulty link; an outage only makes it try later."""
        database = Database(self.config.database)
        try:
            client = dingtalk_client(self.config, database, _now)
            dispatcher = Dispatcher(database, _now)
            after = timedelta(seconds=self.config.reconcile_after)
            Reconciler(database, client, dispatcher, after, _now).run()
        except Exception:  # noqa: S110 -- the database is away on purpose; the next pass retries
            pass
        finally:
            database.dispose()


@contextmanager
def stack(database_url: str, logs: Path) -> Iterator[Stack]:
    """Every function, the sandboxes and two runners, with MariaDB behind a faulty link."""
    link = FaultyLink(3306)
    config = _config(database_url.replace("127.0.0.1:3306", f"127.0.0.1:{link.port}"))
    settings = SandboxSettings(APP_KEY, APP_SECRET, PROCESS_CODE, retry_scale=0.3, stream=False)
    sandbox, mail = Sandbox(settings).start(), MailSandbox().start()
    config = dataclasses.replace(
        config,
        dingtalk_api_base=sandbox.url,
        dingtalk_oapi_base=sandbox.url,
        smtp_port=mail.smtp_port,
    )
    servers = [LiveServer(create_backend(config)), LiveServer(create_approval(config))]
    sandbox.deliverer.target = CallbackTarget(
        f"{servers[1].url}{defaults.CALLBACK_PATH}", CALLBACK_TOKEN, AES_KEY, APP_KEY
    )
    front = FrontendConfig(
        backend_url=servers[0].url, proxy_secret=SECRET, catalogue_file=CATALOGUE, backend_timeout=3
    )
    servers.append(LiveServer(create_frontend(front)))
    runners = Runners(_runner_env(config), logs)
    runners.start()
    runners.start()
    try:
        yield Stack(config, link, sandbox, mail, servers[2].url, runners)
    finally:
        runners.stop()
        for server in servers:
            server.stop()
        sandbox.stop()
        mail.stop()
        link.close()


def every(seconds: float, action: Callable[[], object], stop: threading.Event) -> threading.Thread:
    """Run ``action`` every ``seconds`` in a thread, until ``stop``."""

    def loop() -> None:
        while not stop.wait(seconds):
            action()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def _config(database_url: str) -> Config:
    return Config(
        database_url=database_url,
        proxy_secret=SECRET,
        catalogue_file=CATALOGUE,
        public_base_url="https://apply.example.com",
        rate_limit_per_ip=1000,
        rate_limit_per_email=1000,
        dingtalk_app_key=APP_KEY,
        dingtalk_app_secret=APP_SECRET,
        dingtalk_process_code=PROCESS_CODE,
        dingtalk_originator_user_id="manager01",
        dingtalk_callback_token=CALLBACK_TOKEN,
        dingtalk_callback_aes_key=AES_KEY,
        smtp_host="127.0.0.1",
        license_signing_key=str(VECTORS / "test-signing-key.pem"),
        reconcile_after=5,
        job_lease=10,
    )


def _runner_env(config: Config) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": config.database,
        "CATALOGUE_FILE": str(CATALOGUE),
        "LICENSE_SIGNING_KEY": str(config.license_signing_key),
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(config.smtp_port),
        "DINGTALK_APP_KEY": APP_KEY,
        "DINGTALK_APP_SECRET": APP_SECRET,
        "DINGTALK_PROCESS_CODE": PROCESS_CODE,
        "DINGTALK_ORIGINATOR_USER_ID": "manager01",
        "DINGTALK_API_BASE": str(config.dingtalk_api_base),
        "DINGTALK_OAPI_BASE": str(config.dingtalk_oapi_base),
        "JOB_LEASE": str(config.job_lease),
        "RUNNER_INTERVAL": "1",
    }


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    try:
        answer = requests.post(url, data=body, headers=headers, timeout=15)
    except requests.RequestException:
        return 0, {}
    try:
        return answer.status_code, answer.json()
    except ValueError:
        return answer.status_code, {}


def _now() -> datetime:
    return datetime.now(timezone.utc)
