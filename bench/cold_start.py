"""Cold start, memory and import cost of each function, started as Function Compute starts it.

Each function runs as FC runs it, ``./bootstrap NAME`` on a free loopback port, with the
environment the descriptors give it, on a scratch database (bench/scratch_database.py) and the
DingTalk and mail sandboxes. What is measured:

* Cold start: process start to the first good answer. For the functions that touch the
  database that is FC's ``POST /initialize`` (a query); for the frontend, /catalogue.json (its
  settings and catalogue read). The baseline, started in turn with each, is bench/hello_app.py
  served by ./bootstrap itself with only the app swapped; each round's start is divided by its
  own round's hello, and the median of those ratios is shown with their middle half. Goal
  (issue 13): at most 1.8 x the baseline for the functions that touch the database, 1.2 x for
  the frontend. Beside those, the floor (bench/floor_app.py): Flask, SQLAlchemy and the
  database driver answering /initialize with one query, the least any function that touches
  the database can do; what a function takes above it is dingpass's own.
* Memory: PSS (/proc/PID/smaps_rollup) of gunicorn's master and workers summed, at its peak
  while 8 clients keep a representative endpoint busy (the runner: one client, as FC sends
  it one invocation at a time). Goal: at most 96 MiB per instance (FC's smallest is 128 MiB).
* The import profile of each function's wsgi module (``python -X importtime``, with garbage
  collection off as in the worker building its app: a collection would land on whichever
  module is importing then).
* bootstrap's server flags: two processes against one with threads, with and without
  --preload, for start, memory and throughput per vCPU, under the CPU share of an FC instance
  (a cgroup CPU quota; on this machine as it is where the bench cannot make one). Run with
  --no-compare to leave this part out.
"""

import contextlib
import http.client
import json
import logging
import multiprocessing
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import astuple, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from backend.approvals.dispatcher import Dispatcher  # noqa: E402
from backend.approvals.events import ApprovalEvent  # noqa: E402
from backend.storage.applications import mark_pending  # noqa: E402
from backend.storage.database import Database  # noqa: E402
from backend.storage.schema import applications  # noqa: E402
from bench.scratch_database import database_url  # noqa: E402
from bench.served import PROXY_SECRET  # noqa: E402
from bench.served import signed as signed_headers  # noqa: E402
from frontend.config import STATIC_DIR  # noqa: E402
from sandbox import callback_crypto  # noqa: E402

FUNCTIONS = ("backend", "approval", "runner", "frontend")  # the frontend proxies to a backend
START_GOAL = {"frontend": 1.2, "backend": 1.8, "approval": 1.8, "runner": 1.8}
MEMORY_GOAL_MIB = 96
REPEATS = 11
"""Rounds of starts: one start varies by a third on a machine shared with other work."""
CLIENTS = 8
LOAD_SECONDS = 4.0
RUNNER_BUDGET = "2"  # seconds per invocation: a load of several invocations, not one long one
CONFIGS = {  # name: (GUNICORN_WORKERS, GUNICORN_THREADS, preload)
    "2w x 4t": ("2", "4", False),
    "2w x 4t --preload": ("2", "4", True),
    "1w x 8t": ("1", "8", False),
    "1w x 8t --preload": ("1", "8", True),
    "1w x 4t": ("1", "4", False),
}
IMPORT_RUNS = 3  # the least of them: what the imports cost when nothing else runs
IMPORT = "import gc; gc.disable(); import {name}.wsgi"
"""As gunicorn's worker builds the app (backend/gunicorn_conf.py): without garbage collection."""
OWN_PACKAGES = {"backend", "approval", "runner", "frontend", "license"}
KEPT = 0.85
"""What a configuration must keep of today's throughput per vCPU: on a machine shared with other
work one measure varies by a third from run to run, the median of ROUNDS less."""
TODAY = "2w x 4t"  # bootstrap's flags before this benchmark chose
START_NOISE = 1.35
"""Starts within this factor of the quickest are as quick: the CPU of one configuration's start
varies by a quarter from run to run, while the app imported twice (two workers without
--preload) takes twice as much."""
ROUNDS = 3
COMPARED = ("frontend", "backend", "approval")  # the runner serves one invocation at a time
FC_SIZES = ((256, 0.25),)
"""(MiB, vCPU) the flags are compared at, under a CPU quota: FC gives 1 to 4 GB of memory per
vCPU in steps of 0.05 vCPU, so 256 MiB (what s.yaml deploys) has at most 0.25."""
SMALLEST = (128, 0.1)
"""FC's smallest instance, and its most vCPU: starts and rates there are CPU-bound, so they are
shown as CPU seconds / 0.1 and 0.1 / CPU seconds per answer (the quota runs bear this out)."""
PENDING = 800  # applications the approval load's events approve: more than it gets through
WARM_UP_CALLS = 5 * CLIENTS  # enough for each worker to have taken each kind of call
CGROUP = Path(f"/sys/fs/cgroup/cpu/dingpass-bench-{os.getpid()}")
PYTHON_BIN = Path(sys.executable).parent
APP_KEY, APP_SECRET, PROCESS_CODE = "benchappkey", "bench-app-secret", "PROC-BENCH"
TOKEN = "bench-token"  # noqa: S105 -- made up for the run, on loopback
AES_KEY = "dP7s3kQ9vX2mL8nR4tY6wZ1aB5cD0eF3gH7jK9pQ2rS"
PAGE = ("/apply",) if (STATIC_DIR / "index.html").exists() else ()
"""The apply page, once it is built (`make page`): the frontend's load asks for it too."""
FORM = {
    "product": "acme-erp",
    "feature_code": "9F2C-41AB-77D0-E5C3",
    "company": "示例科技",
    "contact": "张三",
    "quantity": 5,
    "validity": "1y",
}


@dataclass(frozen=True)
class Call:
    """One HTTP request and the status that makes its answer good."""

    method: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200


@dataclass
class Load:
    """What a load did: good answers, their latencies, and the peak PSS meanwhile."""

    seconds: float
    latencies: list[float]
    bad: int
    peak_mib: float
    cpu: float
    """CPU seconds the instance spent meanwhile."""

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def cpu_ms(self) -> float:
        """CPU milliseconds per answer: what bounds the rate on a fraction of a vCPU."""
        return 1000 * self.cpu / max(1, len(self.latencies) + self.bad)

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies) or [float("nan")]
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# --- processes --------------------------------------------------------------------------


class Instance:
    """One function instance: bootstrap's gunicorn master and its workers."""

    def __init__(self, command: list[str], env: dict[str, str], probe: Call, quota: float) -> None:
        self.port = _free_port()
        self.log = tempfile.TemporaryFile()
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**env, "DINGPASS_BIND": f"127.0.0.1:{self.port}"},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=_join_cgroup if quota else None,  # noqa: PLW1509 -- before exec, by design
        )
        try:
            self.start_seconds = self._first_answer(probe)
        except BaseException:
            self.stop()
            raise
        self.start_cpu = self.cpu_seconds()
        self.flags = _flags(self.process.pid)

    def _first_answer(self, probe: Call) -> float:
        deadline = self.started + 120
        while time.perf_counter() < deadline:
            try:
                status, body = _send(http.client.HTTPConnection("127.0.0.1", self.port, 120), probe)
            except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
                if self.process.poll() is not None:
                    break
                time.sleep(0.002)
                continue
            if status != probe.status:
                raise RuntimeError(f"first answer {status}: {body[:300]!r}")
            return time.perf_counter() - self.started
        self.log.seek(0)
        raise RuntimeError(f"did not start: {self.log.read().decode(errors='replace')[-3000:]}")

    def pids(self) -> list[int]:
        master = self.process.pid
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
            return [master, *map(int, children)]
        return [master]

    def pss_mib(self) -> float:
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
                total += int(re.search(r"^Pss:\s+(\d+) kB", rollup, re.M).group(1))  # type: ignore[union-attr]
        return total / 1024

    def cpu_seconds(self) -> float:
        ticks = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def _flags(pid: int) -> str:
    """The server flags bootstrap gave gunicorn, as CONFIGS names them."""
    command = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    workers, threads = (command[command.index(flag) + 1] for flag in ("--workers", "--threads"))
    preload = " --preload" if "--preload" in command else ""
    return f"{workers}w x {threads}t{preload}"


def _join_cgroup() -> None:
    (CGROUP / "cgroup.procs").write_text(str(os.getpid()))


@contextlib.contextmanager
def cpu_quota(vcpu: float) -> Iterator[bool]:
    """A cgroup whose processes share ``vcpu`` CPUs, as FC's instance does; False if none."""
    try:
        CGROUP.mkdir()
        (CGROUP / "cpu.cfs_period_us").write_text("100000")
        (CGROUP / "cpu.cfs_quota_us").write_text(str(int(vcpu * 100000)))
    except OSError:
        yield False
        return
    try:
        yield True
    finally:
        for _ in range(50):  # the last processes leave it as they exit
            with contextlib.suppress(OSError):
                CGROUP.rmdir()
                break
            time.sleep(0.1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _send(connection: http.client.HTTPConnection, call: Call) -> tuple[int, bytes]:
    connection.request(call.method, call.path, body=call.body or None, headers=call.headers)
    answer = connection.getresponse()
    return answer.status, answer.read()


SHIM = """#!/bin/bash
# ./bootstrap's own exec of gunicorn, a baseline app in place of the function's (the last argument).
exec "{python}" "${@:1:$#-1}" bench.{app}:app
"""


def with_baseline(env: dict[str, str], folder: Path, app: str) -> dict[str, str]:
    """``env`` in which ./bootstrap serves bench/``app``.py: its python3 is a shim."""
    shim = folder / f"shim-{app}" / "python3"
    if not shim.exists():
        shim.parent.mkdir(parents=True)
        python = str(PYTHON_BIN / "python3")
        shim.write_text(SHIM.replace("{python}", python).replace("{app}", app))
        shim.chmod(0o755)
    return {**env, "PATH": f"{shim.parent}:{env['PATH']}"}


# --- the stack around the functions -----------------------------------------------------


def _sandboxes(pipe: "multiprocessing.connection.Connection") -> None:
    """DingTalk's and the mail sandbox, in their own process: not on the load's CPU."""
    from sandbox.mail import MailSandbox
    from sandbox.server import Sandbox, SandboxSettings

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    dingtalk = Sandbox(SandboxSettings(APP_KEY, APP_SECRET, PROCESS_CODE, stream=False)).start()
    mail = MailSandbox().start()
    pipe.send((dingtalk.url, mail.smtp_port))
    pipe.recv()  # until told to stop
    mail.stop()
    dingtalk.stop()


@contextlib.contextmanager
def stack(folder: Path) -> Iterator[dict[str, str]]:
    """The environment every function gets: database, sandboxes, secrets."""
    parent, child = multiprocessing.get_context("spawn").Pipe()
    sandboxes = multiprocessing.get_context("spawn").Process(target=_sandboxes, args=(child,))
    sandboxes.start()
    dingtalk, smtp_port = parent.recv()
    try:
        with database_url(folder) as url:
            yield {
                # FC's code packages carry bytecode (make package compiles it): the first,
                # untimed start writes it, even where this shell says not to.
                **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
                "PATH": f"{PYTHON_BIN}:{os.environ['PATH']}",
                "DATABASE_URL": url,
                "PROXY_SECRET": PROXY_SECRET,
                "CATALOGUE_FILE": str(ROOT / "catalogue.toml"),
                "DINGPASS_VAR_DIR": str(folder / "var"),
                "DINGTALK_APP_KEY": APP_KEY,
                "DINGTALK_APP_SECRET": APP_SECRET,
                "DINGTALK_PROCESS_CODE": PROCESS_CODE,
                "DINGTALK_ORIGINATOR_USER_ID": "sandbox-approver",
                "DINGTALK_API_BASE": dingtalk,
                "DINGTALK_OAPI_BASE": dingtalk,
                "DINGTALK_CALLBACK_TOKEN": TOKEN,
                "DINGTALK_CALLBACK_AES_KEY": AES_KEY,
                "SMTP_PORT": str(smtp_port),
                "RUNNER_BUDGET": RUNNER_BUDGET,
            }
    finally:
        parent.send("stop")
        sandboxes.join(10)


class Workload:
    """The calls that prove each function works, and the load that keeps it busy."""

    def __init__(self, env: dict[str, str]) -> None:
        self.database = Database(env["DATABASE_URL"])
        self.serial = iter(range(10**9))
        self.token = ""  # an application's, once the backend has taken one
        self.instances: list[str] = []  # pending applications' DingTalk instances

    def probe(self, name: str) -> Call:
        if name == "frontend":  # its settings and catalogue read, its JSON answered
            return Call("GET", "/catalogue.json")
        return Call("POST", "/initialize")

    def calls(self, name: str) -> Callable[[int], Call]:
        """The load's i-th call, by function."""
        return {
            "frontend": self._frontend_call,
            "backend": self._backend_call,
            "approval": self._approval_call,
            "runner": lambda i: Call("POST", "/invoke", b'{"source": "dingpass.kick"}'),
        }[name]

    def _frontend_call(self, i: int) -> Call:
        paths = ("/catalogue.json", f"/api/applications/{self.token}", *PAGE)
        return Call("GET", paths[i % len(paths)])

    def _backend_call(self, i: int) -> Call:
        if i % 10:  # the status page's polls, mostly; every tenth an application
            return self.signed("GET", f"/applications/{self.token}")
        return self.application()

    def application(self) -> Call:
        n = next(self.serial)
        body = json.dumps({**FORM, "email": f"load{n}@example.com"}).encode()
        return self.signed(
            "POST", "/applications", body, f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", 201
        )

    def signed(
        self, method: str, path: str, body: bytes = b"", ip: str = "203.0.113.7", status: int = 200
    ) -> Call:
        return Call(method, path, body, signed_headers(method, path, body, ip), status)

    def _approval_call(self, i: int) -> Call:
        instance = self.instances[i % len(self.instances)] if self.instances else "unknown"
        event = {
            "EventType": "bpms_instance_change",
            "processInstanceId": instance,
            "processCode": PROCESS_CODE,
            "type": "finish",
            "result": "agree",
            "finishTime": int(time.time() * 1000),
        }
        sealed = callback_crypto.seal(AES_KEY, APP_KEY, json.dumps(event))
        stamp, nonce = str(int(time.time() * 1000)), secrets.token_hex(6)
        query = f"msg_signature={callback_crypto.msg_signature(TOKEN, stamp, nonce, sealed)}"
        query += f"&timestamp={stamp}&nonce={nonce}"
        body = json.dumps({"encrypt": sealed}).encode()
        return Call(
            "POST", f"/dingtalk/callback?{query}", body, {"Content-Type": "application/json"}
        )

    def pending(self, count: int) -> None:
        """``count`` new applications waiting on DingTalk: what the approval load approves."""
        now, self.instances = datetime.now(timezone.utc), []
        with self.database.transaction() as connection:
            for _ in range(count):
                n, instance = next(self.serial), f"bench-{secrets.token_hex(8)}"
                row = {
                    **{k: v for k, v in FORM.items() if k != "feature_code"},
                    "feature_code": "9F2C",
                    "number": f"A{now:%Y%m%d}-{n:06d}",
                    "token": secrets.token_urlsafe(24),
                    "status": "submitted",
                    "product_version": "",
                    "email": f"pending{n}@example.com",
                    "phone": "",
                    "note": "",
                    "language": "zh",
                    "client_ip": "203.0.113.7",
                    "created_at": now,
                    "updated_at": now,
                }
                insert = applications.insert().values(row).returning(applications.c.id)
                mark_pending(connection, connection.execute(insert).scalar_one(), instance, now)
                self.instances.append(instance)

    def approve_all(self) -> None:
        """Approve what is pending, as the approval function would: the runner's work."""
        dispatcher = Dispatcher(self.database, lambda: datetime.now(timezone.utc))
        for instance in self.instances:
            dispatcher.dispatch(ApprovalEvent(instance, "finish", "agree", "http"))
        self.instances = []


def run_load(
    instance: Instance,
    call: Callable[[int], Call],
    clients: int,
    seconds: float,
    calls: int | None = None,
) -> Load:
    """``clients`` keep-alive clients calling for ``seconds`` (or ``calls`` calls in all);
    PSS sampled all along."""
    latencies: list[float] = []
    bad, peak, counter = [0], [instance.pss_mib()], iter(range(calls or 10**9))
    stop = threading.Event()

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", instance.port, timeout=120)
        while not stop.is_set() and (n := next(counter, None)) is not None:
            request = call(n)
            began = time.perf_counter()
            try:
                status, _ = _send(connection, request)
            except (OSError, http.client.HTTPException):
                connection.close()
                status = 0
            if status == request.status:
                latencies.append(time.perf_counter() - began)
            else:
                bad[0] += 1
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began, cpu = time.perf_counter(), instance.cpu_seconds()
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads) and (calls or time.perf_counter() - began < seconds):
        time.sleep(0.1)
        peak[0] = max(peak[0], instance.pss_mib())
    stop.set()
    for thread in threads:
        thread.join()
    peak[0] = max(peak[0], instance.pss_mib())
    cpu = instance.cpu_seconds() - cpu
    return Load(time.perf_counter() - began, latencies, bad[0], peak[0], cpu)


# --- the measurements -------------------------------------------------------------------


@dataclass
class Setting:
    """How the instances of one run are served: bootstrap's flags, and the CPU they get."""

    env: dict[str, str]
    quota: float = 0.0  # vCPU; 0: this machine's

    def flags(self, config: str, quota: float) -> "Setting":
        workers, threads, preload = CONFIGS[config]
        extra = {"GUNICORN_WORKERS": workers, "GUNICORN_THREADS": threads}
        extra["GUNICORN_CMD_ARGS"] = "--preload" if preload else ""
        return Setting({**self.env, **extra}, quota)

    def start(self, name: str | None, probe: Call, baseline: str = "hello_app") -> Instance:
        """Function ``name`` as FC starts it, or (None) a ``baseline`` app in its place, with
        the backend's environment."""
        folder = Path(self.env["DINGPASS_VAR_DIR"])
        env = self.env if name else with_baseline(self.env, folder, baseline)
        return Instance([str(ROOT / "bootstrap"), name or "backend"], env, probe, self.quota)


HELLO = Call("GET", "/")
FLOOR = Call("POST", "/initialize")


def start_once(
    setting: Setting, name: str | None, probe: Call, baseline: str = "hello_app"
) -> tuple[float, float]:
    """Seconds to the first good answer, and the CPU seconds the instance took to get there."""
    instance = setting.start(name, probe, baseline)
    instance.stop()
    return instance.start_seconds, instance.start_cpu


@dataclass
class Starts:
    """One function's starts, each round's beside a hello's and (functions that touch the
    database) a floor's started just before and after it: (wall seconds, CPU seconds) each."""

    function: list[tuple[float, float]] = field(default_factory=list)
    hello: list[tuple[float, float]] = field(default_factory=list)
    floor: list[tuple[float, float]] = field(default_factory=list)

    def median(self, starts: list[tuple[float, float]], column: int = 0) -> float:
        return statistics.median(start[column] for start in starts)

    def ratios(self, starts: list[tuple[float, float]]) -> list[float]:
        """Each round's wall time over that round's hello: the machine's mood cancels out."""
        return sorted(s[0] / h[0] for s, h in zip(starts, self.hello, strict=False))


def cold_starts(setting: Setting, work: Workload) -> dict[str, Starts]:
    """Each function's starts, the hello's and the floor's beside them, started in turn."""
    found = {}
    for name in FUNCTIONS:
        starts = found[name] = Starts()
        for _ in range(REPEATS):
            starts.hello.append(start_once(setting, None, HELLO))
            starts.function.append(start_once(setting, name, work.probe(name)))
            if name != "frontend":
                starts.floor.append(start_once(setting, None, FLOOR, "floor_app"))
    return found


def loaded(setting: Setting, name: str, work: Workload) -> tuple[Instance, Load]:
    """Start ``name``, load it, stop it: the instance (its start) and the load.

    The load is timed once a warm-up has left the instance idle: what a process builds on first
    use (compiled statements, the DingTalk client) counts in its memory, not in its throughput.
    The runner has none: its load is the work that waits for it.
    """
    if name == "approval":
        work.pending(PENDING)
    elif name == "runner":
        work.approve_all()
    instance = setting.start(name, work.probe(name))
    try:
        peak = instance.pss_mib()
        if name != "runner":
            peak = run_load(instance, work.calls(name), CLIENTS, 0.0, WARM_UP_CALLS).peak_mib
            settle(instance)
        clients = 1 if name == "runner" else CLIENTS  # FC: one invocation at a time
        load = run_load(instance, work.calls(name), clients, LOAD_SECONDS)
        load.peak_mib = max(load.peak_mib, peak)
        return instance, load
    finally:
        instance.stop()


def settle(instance: Instance, limit: float = 30.0) -> None:
    """Wait until the instance's CPU time stands still for a moment (or ``limit`` seconds)."""
    deadline, used = time.perf_counter() + limit, instance.cpu_seconds()
    while time.perf_counter() < deadline:
        time.sleep(0.5)
        if (now := instance.cpu_seconds()) - used < 0.02:
            return
        used = now


def import_profile(env: dict[str, str], name: str) -> tuple[float, list[tuple[str, float]], float]:
    """Importing ``name``.wsgi (which builds the app), the least of IMPORT_RUNS: its total ms,
    the packages that cost most (ms from where each is entered, with what it brings along),
    and the ms of dingpass's own modules (without what they import)."""
    runs = [_import_times(env, name) for _ in range(IMPORT_RUNS)]
    total = min(run[0] for run in runs)
    packages = {package: min(run[1].get(package, 0.0) for run in runs) for package in runs[0][1]}
    top = sorted(packages.items(), key=lambda item: -item[1])[:8]
    return total, top, min(run[2] for run in runs)


def _import_times(env: dict[str, str], name: str) -> tuple[float, dict[str, float], float]:
    done = subprocess.run(
        [str(PYTHON_BIN / "python3"), "-X", "importtime", "-c", IMPORT.format(name=name)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in done.stderr.splitlines():
        if found := re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line):
            rows.append((int(found[1]), int(found[2]), len(found[3]), found[4]))
    packages: dict[str, float] = defaultdict(float)
    own_ms = 0.0
    for i, (self_us, cumulative_us, depth, module) in enumerate(rows):
        top = module.split(".")[0]
        parent = next((row[3] for row in rows[i + 1 :] if row[2] < depth), "")
        if top in OWN_PACKAGES:
            own_ms += self_us / 1000
        elif parent.split(".")[0] != top:
            packages[top] += cumulative_us / 1000
    total = next(row[1] for row in rows if row[3] == f"{name}.wsgi") / 1000
    return total, packages, own_ms


@dataclass(frozen=True)
class Figures:
    """One function under one configuration and CPU share."""

    start: float
    cpu: float
    peak_mib: float
    rate: float
    cpu_ms: float
    p99: float


def compare(base: Setting, work: Workload) -> dict[tuple[float, str, str], Figures]:
    """Every configuration at FC's sizes (on this machine as it is, where no quota can be set):
    (vCPU, config, function) -> figures."""
    figures: dict[tuple[float, str, str], Figures] = {}
    for mib, vcpu in FC_SIZES:
        with cpu_quota(vcpu) as limited:
            if not limited:
                print(f"\n  no cgroup for a CPU quota here: {mib} MiB's {vcpu} vCPU is left out")
                continue
            figures |= compare_at(base, work, vcpu)
    return figures or compare_at(base, work, 0.0)


def compare_at(base: Setting, work: Workload, vcpu: float) -> dict[tuple[float, str, str], Figures]:
    """Each configuration and function ROUNDS times, the rounds in turn: each figure's median
    (the peak PSS: its largest), so that a moment of other work on this machine weighs little."""
    rounds: dict[tuple[str, str], list[Figures]] = defaultdict(list)
    for _ in range(ROUNDS):
        for config in CONFIGS:
            for name in COMPARED:
                instance, load = loaded(base.flags(config, vcpu), name, work)
                rounds[config, name].append(
                    Figures(
                        instance.start_seconds,
                        instance.start_cpu,
                        load.peak_mib,
                        load.rate,
                        load.cpu_ms,
                        load.percentile(0.99),
                    )
                )
    mib, share = SMALLEST
    print(f"\n  {_size_name(vcpu)}, median of {ROUNDS} rounds; at {mib} MiB, ", end="")
    print(f"the start ~ CPU / {share}, the rate {share} / CPU per request:")
    print(
        f"    {'flags':18} {'function':9} {'start':>7} {'CPU':>6} {'PSS':>9} {'req/s':>7}", end=""
    )
    print(f" {'p99':>7} {'CPU/req':>8} {f'start, req/s at {mib} MiB':>26}")
    figures = {}
    for (config, name), measured in rounds.items():
        rows = [astuple(figure) for figure in measured]
        columns = [statistics.median(column) for column in zip(*rows, strict=True)]
        columns[2] = max(figure.peak_mib for figure in measured)
        figures[vcpu, config, name] = row = Figures(*columns)
        print(
            f"    {config:18} {name:9} {row.start:6.2f}s {row.cpu:5.2f}s"
            f" {row.peak_mib:5.1f} MiB {row.rate:7.1f} {row.p99 * 1000:5.0f}ms"
            f" {row.cpu_ms:5.1f}ms {row.cpu / share:16.1f}s {share * 1000 / row.cpu_ms:7.1f}"
        )
    return figures


def choose(figures: dict[tuple[float, str, str], Figures]) -> str:
    """One default for every function. Of the configurations within the memory goal for all,
    those that keep KEPT of today's throughput per vCPU (TODAY's CPU per answer over theirs,
    the geometric mean over the functions); of them, those within START_NOISE of the quickest
    start (the CPU the functions take to start, which a fraction of a vCPU stretches); the
    smallest. All three functions together, so that one function's noisy figure weighs a third."""
    vcpu = min(v for v, _, _ in figures)
    row = {(c, n): figures[vcpu, c, n] for c in CONFIGS for n in COMPARED}

    def kept(config: str) -> float:
        ratios = [row[TODAY, n].cpu_ms / row[config, n].cpu_ms for n in COMPARED]
        return statistics.geometric_mean(ratios)

    def start(config: str) -> float:
        return sum(row[config, n].cpu for n in COMPARED)

    def peak(config: str) -> float:
        return max(row[config, n].peak_mib for n in COMPARED)

    mib, share = SMALLEST
    print(f"\n  Throughput per vCPU as a share of {TODAY}'s (its CPU per answer over theirs);")
    print("  the CPU the three take to start; the largest PSS of the three:")
    names = "".join(f" {name:>9}" for name in COMPARED)
    print(f"  {'flags':18}{names} {'together':>9} {'start':>7} {f'at {mib} MiB':>11} {'PSS':>9}")
    for config in CONFIGS:
        each = "".join(f" {row[TODAY, n].cpu_ms / row[config, n].cpu_ms:9.0%}" for n in COMPARED)
        print(f"  {config:18}{each} {kept(config):9.0%} {start(config):6.2f}s", end="")
        print(f" {start(config) / share:10.1f}s {peak(config):5.1f} MiB", end="")
        print(f" {verdict(peak(config) <= MEMORY_GOAL_MIB)}")
    fitting = [c for c in CONFIGS if peak(c) <= MEMORY_GOAL_MIB] or list(CONFIGS)
    keeping = [c for c in fitting if kept(c) >= KEPT] or [max(fitting, key=kept)]
    quickest = min(start(c) for c in keeping)
    return min((c for c in keeping if start(c) <= START_NOISE * quickest), key=peak)


def _size_name(vcpu: float) -> str:
    if not vcpu:
        return f"this machine ({os.cpu_count()} CPUs)"
    memory = next(mib for mib, share in FC_SIZES if share == vcpu)
    return f"FC {memory} MiB ({vcpu} vCPU quota)"


# --- the report -------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "meets" if ok else "BELOW"


def print_cold_starts(found: dict[str, Starts], work: Workload) -> None:
    load = " ".join(f"{figure:.1f}" for figure in os.getloadavg())
    mib, vcpu = SMALLEST
    print(f"\nCold start: process start to first good answer, {REPEATS} rounds (load {load})")
    print("  ratio: the median of the rounds' ratios to their hello; beside it their middle half")
    print(f"  {'function':9} {'first good answer':20} {'function':>8} {'hello':>7}", end="")
    print(f" {'ratio':>6} {'middle half':>11}  {'goal':14} {'CPU s':>6} {'hello':>5}", end="")
    print(f" {'ratio':>6}  at {mib} MiB ({vcpu} vCPU)", end="")
    print(f"  {'floor':>6} {'ratio':>6} {'middle half':>11} {'above it':>8}")
    for name, starts in found.items():
        probe = work.probe(name)
        print(f"  {name:9} {probe.method + ' ' + probe.path:20}", end="")
        _print_start(starts, START_GOAL[name])
    print(
        "  floor: bench/floor_app.py, Flask + SQLAlchemy + the driver answering /initialize with"
        " one query; its ratio is the least a function that touches the database could reach"
    )


def _print_start(starts: Starts, goal: float) -> None:
    """One function's row after its name: wall, ratio, CPU, and the floor's beside them."""
    wall, hello = starts.median(starts.function), starts.median(starts.hello)
    ratio, spread = _ratio(starts.ratios(starts.function))
    cpu, hello_cpu = starts.median(starts.function, 1), starts.median(starts.hello, 1)
    print(
        f" {wall:7.3f}s {hello:6.3f}s {ratio:5.2f}x {spread:>11}  <= {goal}x"
        f" {verdict(ratio <= goal):5} {cpu:5.2f}s {hello_cpu:5.2f} {cpu / hello_cpu:5.2f}x"
        f"  ~{cpu / SMALLEST[1]:4.1f}s (CPU s / {SMALLEST[1]})",
        end="",
    )
    if not starts.floor:
        print()
        return
    floor, floor_spread = _ratio(starts.ratios(starts.floor))
    above = wall - starts.median(starts.floor)
    print(f" {starts.median(starts.floor):6.3f}s {floor:5.2f}x {floor_spread:>11} {above:+7.3f}s")


def _ratio(ratios: list[float]) -> tuple[float, str]:
    """The median of sorted ``ratios``, and their middle half as "low-high"."""
    quarter = len(ratios) // 4
    middle = ratios[quarter : len(ratios) - quarter]
    return statistics.median(ratios), f"{middle[0]:.2f}-{middle[-1]:.2f}"


LOADS = {
    "backend": f"{CLIENTS} clients: signed status reads, every 10th a new application",
    "approval": f"{CLIENTS} clients: DingTalk's sealed finish events for pending applications",
    "runner": "1 client, as FC gives it one invocation at a time: kicks that run the approved"
    " applications' license and mail jobs",
    "frontend": f"{CLIENTS} clients: catalogue.json, a proxied status read"
    + (", the page" if PAGE else " (the page is not built: `make page`)"),
}


def print_memory(results: dict[str, tuple[Instance, Load]]) -> None:
    print(f"\nPeak memory under load: PSS of master + workers, {LOAD_SECONDS:.0f} s of load")
    for name, (instance, load) in results.items():
        ok = load.peak_mib <= MEMORY_GOAL_MIB
        print(
            f"  {name:9} {load.peak_mib:6.1f} MiB  <= {MEMORY_GOAL_MIB} MiB {verdict(ok):5}"
            f" {instance.flags}: {load.rate:6.1f}/s ({load.cpu_ms:4.1f} ms CPU each),"
            f" p50 {load.percentile(0.5) * 1000:4.0f} ms,"
            f" p99 {load.percentile(0.99) * 1000:5.0f} ms, {load.bad} bad; {LOADS[name]}"
        )


def print_import_profiles(env: dict[str, str]) -> None:
    command = IMPORT.format(name="NAME")
    print(f"\nImport profile: python -X importtime -c '{command}', least of {IMPORT_RUNS}")
    print("  (the import builds the app; a package's ms from where it is first entered)")
    for name in FUNCTIONS:
        total, packages, own = import_profile(env, name)
        listed = ", ".join(f"{package} {ms:.0f}" for package, ms in packages)
        print(f"  {name:9} {total:4.0f} ms; dingpass's own modules {own:3.0f} ms; {listed}")


def main() -> None:
    with tempfile.TemporaryDirectory() as folder, stack(Path(folder)) as env:
        work = Workload(env)
        base = Setting({k: v for k, v in env.items() if not k.startswith("GUNICORN_")})
        helper = base.start("backend", work.probe("backend"))  # what the frontend proxies to
        try:
            print(f"This machine has {os.cpu_count()} CPUs.")
            connection = http.client.HTTPConnection("127.0.0.1", helper.port, 10)
            work.token = json.loads(_send(connection, work.application())[1])["token"]
            base.env["BACKEND_URL"] = f"http://127.0.0.1:{helper.port}"
            for name in FUNCTIONS:  # bytecode written and files cached before anything is timed
                start_once(base, name, work.probe(name))
            start_once(base, None, HELLO)
            start_once(base, None, FLOOR, "floor_app")
            print_cold_starts(cold_starts(base, work), work)
            loads = {name: loaded(base, name, work) for name in FUNCTIONS}
            print_memory(loads)
            print_import_profiles(base.env)
            if "--no-compare" not in sys.argv[1:]:
                print(
                    "\nServer flags (bootstrap reads GUNICORN_WORKERS, GUNICORN_THREADS):", end=""
                )
                chosen = choose(compare(base, work))
                defaults = {instance.flags for instance, _ in loads.values()}
                agrees = "bootstrap's default" if defaults == {chosen} else f"bootstrap: {defaults}"
                print(f"  chosen: {chosen} ({agrees}; the runner, one invocation at a time, too)")
        finally:
            helper.stop()


if __name__ == "__main__":
    main()
