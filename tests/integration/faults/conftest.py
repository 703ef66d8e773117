"""Fixtures for fault tests: a runner in a process of its own, to kill with SIGKILL."""

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import CATALOGUE, ROOT, VECTORS
from tests.integration.test_cli_errors import SCRIPT
from tests.integration.test_fulfillment import mailbox, runner, settings  # noqa: F401 -- fixtures


@pytest.fixture
def runner_process(settings, mailbox) -> Iterator[Callable[[], subprocess.Popen[str]]]:  # noqa: F811
    """Start `dingpass runner --once` on the test database and mail sandbox, as FC would."""
    started: list[subprocess.Popen[str]] = []
    env = {
        **os.environ,
        "DATABASE_URL": settings.database,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(mailbox.smtp_port),
        "CATALOGUE_FILE": str(CATALOGUE),
        "LICENSE_SIGNING_KEY": str(VECTORS / "test-signing-key.pem"),
    }

    def start() -> subprocess.Popen[str]:
        command = [str(SCRIPT), "runner", "--once"]
        process = subprocess.Popen(command, env=env, cwd=ROOT, text=True, stderr=subprocess.PIPE)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stderr.close()


def kill_when(
    condition: Callable[[], bool], process: subprocess.Popen[str], within: float = 20
) -> None:
    """SIGKILL ``process`` the moment ``condition`` holds: no cleanup, its lease stays."""
    deadline = time.monotonic() + within
    while not condition():
        assert process.poll() is None, f"the runner ended first: {process.stderr.read()}"
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
