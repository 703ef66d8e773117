"""Fixtures shared by every test: the license test vectors and small builders."""

import contextlib
import json
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from license import Issuer, License, Licensee, key_ring
from license.keys import load_private_key
from license.verifier import parse_time

ROOT = Path(__file__).parent.parent
VECTORS = ROOT / "tests" / "vectors" / "license-v1"
CATALOGUE = ROOT / "catalogue.toml"
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)


def terms_from_json(data: dict) -> License:
    """License terms from the vector's JSON form."""
    return License(
        id=data["id"],
        product=data["product"],
        edition=data["edition"],
        licensee=Licensee(**data["licensee"]),
        feature_code=data["feature_code"],
        quantity=data["quantity"],
        issued_at=parse_time(data["issued_at"]),
        valid_from=parse_time(data["valid_from"]),
        valid_until=None if data["valid_until"] is None else parse_time(data["valid_until"]),
        entitlements=tuple(data["entitlements"]),
        application=data["application"],
    )


@pytest.fixture
def vector_key() -> Ed25519PrivateKey:
    return load_private_key(str(VECTORS / "test-signing-key.pem"))


@pytest.fixture
def vector_terms() -> License:
    return terms_from_json(json.loads((VECTORS / "terms.json").read_text(encoding="utf-8")))


@pytest.fixture
def vector_text() -> str:
    return (VECTORS / "expected.lic").read_text(encoding="utf-8")


@pytest.fixture
def ring(vector_key: Ed25519PrivateKey) -> dict:
    return key_ring([(VECTORS / "test-public-key.pem").read_bytes()])


@pytest.fixture
def issuer(vector_key: Ed25519PrivateKey) -> Issuer:
    return Issuer(vector_key)


@pytest.fixture
def terms() -> License:
    """Plain terms for tests that do not need the vector's exact bytes."""
    return License(
        id="L20261123-TEST0001",
        product="acme-erp",
        edition="standard",
        licensee=Licensee("示例科技有限公司", "李四", "li.si@example.com"),
        feature_code="AAAA-BBBB",
        quantity=3,
        issued_at=NOW,
        valid_from=NOW,
        valid_until=NOW + timedelta(days=30),
    )


@pytest.fixture
def run_cli(tmp_path, monkeypatch):
    """Run `dingpass ARGS` in-process with a Config built from ``env``, in a scratch folder."""
    from click.testing import CliRunner

    from backend.config import Config
    from cli.context import script_info
    from cli.main import cli

    monkeypatch.chdir(tmp_path)

    def run(*args: str, env: dict[str, str] | None = None, input: str | None = None):
        config = Config.from_env({"CATALOGUE_FILE": str(CATALOGUE), **(env or {})})
        return CliRunner().invoke(cli, list(args), obj=script_info(config), input=input)

    return run


STARTUP_SECONDS = 60


EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
_GIVEN: set[int] = set()  # never the same port twice in a run


def free_port() -> int:
    """A loopback port no one listens on, for a server a test starts a little later."""
    # Below the ephemeral range: a port bind(0) picks can be taken in the meantime as the
    # source port of some outgoing connection (the stack's own, starting up), and then the
    # server cannot listen on it.
    lowest_ephemeral = int(EPHEMERAL.read_text().split()[0]) if EPHEMERAL.exists() else 32768
    while True:
        port = random.randrange(10000, max(lowest_ephemeral, 10001))  # noqa: S311 -- a port, not a secret
        if port in _GIVEN:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port some other program listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


def wait_for(predicate: Callable[[], object], seconds: float = 5.0) -> bool:
    """Whether ``predicate`` comes true within ``seconds``, asked every 50 ms."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


DEV_FORM = {
    "product": "acme-erp",
    "feature_code": "9F2C-41AB-77D0-E5C3",
    "company": "示例科技",
    "contact": "张三",
    "email": "z@example.com",
    "quantity": 5,
    "validity": "1y",
}
"""An application for the catalogue's first product, as the page would post it to `dingpass dev`."""


@pytest.fixture
def dev_stack(tmp_path):
    """`dingpass dev` running on free ports; what it printed at start."""
    with running_dev(tmp_path) as (_, printed):
        yield printed


@contextlib.contextmanager
def running_dev(folder: Path, *args: str, **popen: Any) -> Iterator[tuple[subprocess.Popen, str]]:
    """`dingpass dev ARGS` run in ``folder`` on free ports, and what it printed; stopped after."""
    from frontend.config import STATIC_DIR

    if not (STATIC_DIR / "index.html").exists():
        pytest.fail("the page is not built: run `make test`, which builds vue-app first")
    front, back, sandbox, approval, inbox, smtp, cloud = (free_port() for _ in range(7))
    env = {
        **os.environ,
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{front}",
        "BACKEND_URL": f"http://127.0.0.1:{back}",
        "CATALOGUE_FILE": str(CATALOGUE),
        "DINGPASS_VAR_DIR": str(folder / "var"),
        "SMTP_PORT": str(smtp),
    }
    script = Path(sys.executable).with_name("dingpass")
    command = [
        script,
        "dev",
        "--sandbox-port",
        str(sandbox),
        "--approval-port",
        str(approval),
        "--inbox-port",
        str(inbox),
        "--cloud-port",
        str(cloud),
        *args,
    ]
    process = subprocess.Popen(
        command, cwd=folder, env=env, stdout=subprocess.PIPE, text=True, **popen
    )
    lines: queue.Queue[str | None] = queue.Queue()
    # A reader thread, so a stack that hangs before announcing itself fails within the deadline.
    reader = threading.Thread(target=_forward, args=(process.stdout, lines))
    reader.start()
    try:
        yield process, _read_until_ready(process, lines)
    finally:
        _stop(process)
        reader.join()


def _forward(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    with stream:
        for line in stream:
            lines.put(line)
    lines.put(None)  # end of output: the process has gone


def _read_until_ready(process: subprocess.Popen, lines: queue.Queue[str | None]) -> str:
    """What the stack printed up to "Ctrl+C stops.", or a failure, never a wait without end."""
    printed = ""
    deadline = time.monotonic() + STARTUP_SECONDS
    while "Ctrl+C" not in printed:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            pytest.fail(f"`dingpass dev` did not start in {STARTUP_SECONDS} s:\n{printed}")
        if line is None:
            pytest.fail(f"`dingpass dev` exited ({process.wait()}):\n{printed}")
        printed += line
    return printed


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail("`dingpass dev` did not stop within 10 s of Ctrl+C")


def a_form(**changes: object) -> dict[str, object]:
    """A valid application form, with ``changes``."""
    form = {
        "product": "acme-erp",
        "product_version": "8.2",
        "feature_code": "9F2C-41AB-77D0-E5C3",
        "company": "杭州示例网络科技有限公司",
        "contact": "张三",
        "email": "zhang@example.com",
        "phone": "+86 138 0000 0000",
        "quantity": 5,
        "validity": "1y",
        "note": "",
        "language": "zh",
    }
    return {**form, **changes}
