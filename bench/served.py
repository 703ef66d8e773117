"""Functions served as Function Compute serves them, for the benchmarks that time HTTP.

``./bootstrap NAME`` on a loopback port; a benchmark's own baseline app under the very same
gunicorn command (its flags read from nowhere but ./bootstrap); keep-alive clients that time
each request; and the backend's environment with DingTalk pointed at a local sandbox.
"""

import http.client
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from backend.signed_requests import CLIENT_IP, IDEMPOTENCY_KEY, SIGNATURE, TIMESTAMP, signature

ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP = ROOT / "bootstrap"
CATALOGUE = ROOT / "catalogue.toml"
STARTUP_SECONDS = 30
PROXY_SECRET = "bench-proxy-secret"  # noqa: S105 -- made up for the run, on loopback
APP_KEY, APP_SECRET, PROCESS_CODE = "benchappkey", "bench-app-secret", "PROC-BENCH-0001"
ORIGINATOR = "manager01"
"""An employee of the sandbox's organisation, whom instances are started as."""
SHIM = """#!/bin/bash
# ./bootstrap's own gunicorn command, its last argument (the app) swapped for BENCH_APP.
exec "{python}" "${{@:1:$#-1}}" "$BENCH_APP"
"""
Request = tuple[str, str, bytes, dict[str, str]]
"""method, path, body, headers."""


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Served:
    """One function started by ./bootstrap on a free loopback port, its output in a log file."""

    def __init__(self, name: str, env: dict[str, str], folder: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / f"{name}-{self.port}.log"
        function = "backend" if env.get("BENCH_APP") else name  # bootstrap wants a known name
        with self.log.open("w") as output:
            self.process = subprocess.Popen(
                [str(BOOTSTRAP), function],
                env={**env, "DINGPASS_BIND": f"127.0.0.1:{self.port}"},
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self._wait_until_up(name)

    def _wait_until_up(self, name: str) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if get(self.port, "/healthz") == 200:
                    return
            except OSError:  # not listening yet
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{name} did not start:\n{self.log.read_text()[-3000:]}")

    def cpu_seconds(self) -> float:
        """CPU time used so far by gunicorn's master and its workers."""
        return process_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` and its children (Linux /proc)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return ticks / os.sysconf("SC_CLK_TCK") + sum(process_cpu_seconds(int(c)) for c in children)


def get(port: int, path: str) -> int:
    """The status of one GET on a fresh connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


def base_environment(folder: Path) -> dict[str, str]:
    """What every served function gets: this venv's python first on PATH, nothing inherited
    that could point it elsewhere (a developer's DATABASE_URL, say)."""
    path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    return {
        "PATH": path,
        "LANG": "C.UTF-8",
        "PROXY_SECRET": PROXY_SECRET,
        "CATALOGUE_FILE": str(CATALOGUE),
        "DINGPASS_VAR_DIR": str(folder / "var"),
    }


def backend_environment(folder: Path, database: str, dingtalk: str) -> dict[str, str]:
    """The backend's variables, as the descriptors give them, with DingTalk at ``dingtalk``."""
    return {
        **base_environment(folder),
        "DATABASE_URL": database,
        "DINGTALK_APP_KEY": APP_KEY,
        "DINGTALK_APP_SECRET": APP_SECRET,
        "DINGTALK_PROCESS_CODE": PROCESS_CODE,
        "DINGTALK_ORIGINATOR_USER_ID": ORIGINATOR,
        "DINGTALK_API_BASE": dingtalk,
        "DINGTALK_OAPI_BASE": dingtalk,
        # Loopback only: nothing a benchmark starts may reach out.
        "CLOUD_ENDPOINT": "http://127.0.0.1:9",
    }


def baseline_environment(folder: Path, app: str) -> dict[str, str]:
    """Serve ``app`` (module:name) with ./bootstrap's own gunicorn command and flags."""
    shim = folder / "shim"
    shim.mkdir(exist_ok=True)
    python3 = shim / "python3"
    python3.write_text(SHIM.format(python=sys.executable))
    python3.chmod(0o755)
    env = base_environment(folder)
    return {**env, "PATH": f"{shim}:{env['PATH']}", "BENCH_APP": app}


def signed(
    method: str, path: str, body: bytes = b"", ip: str = "203.0.113.7", key: str | None = None
) -> dict[str, str]:
    """Headers of a request signed as the frontend's proxy signs it."""
    stamp = str(int(time.time()))
    mac = signature(PROXY_SECRET.encode(), method, path, stamp, ip, key, body)
    headers = {TIMESTAMP: stamp, CLIENT_IP: ip, SIGNATURE: mac}
    headers["Content-Type"] = "application/json"
    return headers | ({IDEMPOTENCY_KEY: key} if key else {})


@dataclass
class Timings:
    """Each good request's seconds, and what went wrong with the others."""

    seconds: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.seconds) / self.elapsed if self.elapsed else 0.0

    def add(self, other: "Timings") -> None:
        self.seconds += other.seconds
        self.failures += other.failures
        self.elapsed += other.elapsed


class KeptAlive:
    """One keep-alive connection that times each request sent over it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def send(self, request: Request, expected: int, timings: Timings) -> bytes:
        """Send ``request``; its time goes to ``timings`` if the status is ``expected``."""
        method, path, body, headers = request
        start = time.perf_counter()
        try:
            self.connection.request(method, path, body or None, headers)
            answer = self.connection.getresponse()
            data = answer.read()
        except (OSError, http.client.HTTPException) as err:
            self.connection.close()  # a dropped connection: the next request opens another
            timings.failures.append(f"{type(err).__name__}: {err}")
            return b""
        took = time.perf_counter() - start
        if answer.status == expected:
            timings.seconds.append(took)
        else:
            timings.failures.append(f"{answer.status} {data[:200]!r}")
        return data


def hammer(
    port: int, requests: Callable[[], Request], expected: int, clients: int, seconds: float
) -> Timings:
    """``clients`` threads, each on its own keep-alive connection, sending for ``seconds``."""
    parts = [Timings() for _ in range(clients)]
    start = time.perf_counter()
    deadline = start + seconds

    def client(timings: Timings) -> None:
        connection = KeptAlive(port)
        while time.perf_counter() < deadline:
            connection.send(requests(), expected, timings)
        connection.connection.close()

    threads = [threading.Thread(target=client, args=(part,)) for part in parts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = Timings(elapsed=time.perf_counter() - start)
    for part in parts:
        total.seconds += part.seconds
        total.failures += part.failures
    return total


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` of 1)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def p50_p99(values: list[float]) -> tuple[float, float]:
    """Median and 99th percentile, in milliseconds."""
    return statistics.median(values) * 1000, percentile(values, 0.99) * 1000


def ip_of(n: int) -> str:
    """The ``n``th of 16 million private addresses (10.0.0.0/8): one per request."""
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


@contextmanager
def served(name: str, env: dict[str, str], folder: Path) -> Iterator[Served]:
    """A function served for the duration of the block."""
    function = Served(name, env, folder)
    try:
        yield function
    finally:
        function.stop()
