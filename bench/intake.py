"""Intake: ``POST /api/applications`` at concurrency 8, beside a bare Flask app doing one INSERT.

The page's POST /api/applications reaches the backend as a signed POST /applications (the
frontend's proxy adds the signature); this sends that signed request straight to the backend
function, started by ./bootstrap as Function Compute starts it, with DingTalk's API pointed
at the sandbox in this process. The baseline is bench/intake_baseline.py under the very same
gunicorn command and flags, storing each form with one INSERT through SQLAlchemy in a table of
its own on the same scratch database. Every request has an email and a client IP of its own,
so the intake's rate limits never refuse one, and an idempotency key of its own, as the page
sends every submission with one (the baseline ignores it). The two take turns, ROUNDS times
each, after a warm-up each time; then each serves one client alone for a while, for its
latency when no request waits for another.

Goal (issue 13): the backend's rate at least 0.5x the baseline's, and its p99 at most 50 ms.
Also printed, to say where the time goes: the CPU each request costs in gunicorn's processes
and in MariaDB (server-wide, so others' queries at the time count too), and the database work
of one request, counted exactly on each app in this process over COUNTED sequential
submissions: statements (and how many of them SQLAlchemy compiled anew instead of taking from
its cache), transactions, and the pool's pings.
"""

import itertools
import json
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask
from intake_baseline import DATABASE_VARIABLE, metadata
from intake_baseline import create_app as create_baseline
from scratch_database import database_url
from served import (
    APP_KEY,
    APP_SECRET,
    PROCESS_CODE,
    Request,
    Served,
    Timings,
    backend_environment,
    baseline_environment,
    hammer,
    ip_of,
    p50_p99,
    process_cpu_seconds,
    served,
    signed,
)
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine.default import CACHE_MISS, NO_CACHE_KEY

from backend.app import create_app as create_backend
from backend.config import Config
from sandbox.server import Sandbox, SandboxSettings

CLIENTS = 8
WARMUP_SECONDS = 2.0
SECONDS = 8.0
ROUNDS = 2
COUNTED = 100
ALONE_SECONDS = 3.0
RATE_GOAL, P99_GOAL_MS = 0.5, 50.0
FORM = {
    "product": "acme-erp",
    "product_version": "8.2",
    "feature_code": "9F2C-41AB-77D0-E5C3",
    "company": "杭州示例网络科技有限公司",
    "contact": "张三",
    "phone": "+86 138 0000 0000",
    "quantity": 5,
    "validity": "1y",
    "note": "",
    "language": "zh",
}
_numbers = itertools.count(1)  # next() on it is atomic: each client thread draws its own


def application() -> Request:
    """A signed POST /applications from an applicant and an IP seen once, under an idempotency
    key of its own, as the page sends every submission."""
    n = next(_numbers)
    body = json.dumps({**FORM, "email": f"bench{n}@example.com"}).encode()
    headers = signed("POST", "/applications", body, ip_of(n), key=f"bench-{n}")
    return "POST", "/applications", body, headers


@dataclass
class Tally:
    """The database work counted on one engine."""

    statements: int = 0
    compiled: int = 0
    """Statements SQLAlchemy compiled for the execution: not in its cache, or not cacheable."""
    transactions: int = 0
    pings: int = 0


@contextmanager
def tallied(engine: Engine) -> Iterator[Tally]:
    """Count what ``engine`` sends while the block runs."""
    tally = Tally()

    def executed(*args: Any) -> None:
        context = args[4]
        tally.statements += 1
        tally.compiled += getattr(context, "cache_hit", None) in (CACHE_MISS, NO_CACHE_KEY)

    def ended(_connection: Any) -> None:
        tally.transactions += 1

    def ping(dbapi_connection: Any) -> bool:
        tally.pings += 1
        return bool(type(dialect).do_ping(dialect, dbapi_connection))

    dialect = engine.dialect
    listeners = [("after_cursor_execute", executed), ("commit", ended), ("rollback", ended)]
    for name, listener in listeners:
        event.listen(engine, name, listener)
    dialect.do_ping = ping  # type: ignore[method-assign]  # the pool's pre-ping calls it
    try:
        yield tally
    finally:
        del dialect.do_ping
        for name, listener in listeners:
            event.remove(engine, name, listener)


def counted(app: Flask, engine: Engine) -> Tally:
    """The database work of COUNTED sequential submissions to ``app``, after a few unmeasured."""
    client = app.test_client()

    def submit() -> None:
        _, path, body, headers = application()
        answer = client.post(path, data=body, headers=headers)
        assert answer.status_code == 201, answer.get_data(as_text=True)

    for _ in range(5):
        submit()
    with tallied(engine) as tally:
        for _ in range(COUNTED):
            submit()
    engine.dispose()
    return tally


def readings(server: Served, mariadb: int | None) -> dict[str, float]:
    """The CPU seconds used so far by the server, and by MariaDB if it runs here."""
    cpu = {"server": server.cpu_seconds()}
    return cpu | ({"mariadb": process_cpu_seconds(mariadb)} if mariadb else {})


def measure(server: Served, mariadb: int | None) -> tuple[Timings, dict[str, float]]:
    """One measured run after a warm-up, and the CPU seconds used over it."""
    hammer(server.port, application, 201, CLIENTS, WARMUP_SECONDS)
    before = readings(server, mariadb)
    timings = hammer(server.port, application, 201, CLIENTS, SECONDS)
    after = readings(server, mariadb)
    return timings, {name: after[name] - before[name] for name in after}


def mariadb_pid() -> int | None:
    """The MariaDB server's process, if it runs on this machine."""
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() in ("mariadbd", "mysqld"):
                return int(comm.parent.name)
        except OSError:  # gone meanwhile
            continue
    return None


Figures = tuple[Timings, dict[str, float], Timings]
"""A server's timings, the CPU seconds used over them, and its timings with one client."""


def rounds(servers: dict[str, Served], mariadb: int | None) -> dict[str, Figures]:
    """Each server measured ROUNDS times, taking turns (figures summed over the rounds), then
    with one client alone: the time a request takes when none waits for another."""
    totals: dict[str, Figures] = {name: (Timings(), {}, Timings()) for name in servers}
    for _ in range(ROUNDS):
        for name, server in servers.items():
            timings, used = measure(server, mariadb)
            totals[name][0].add(timings)
            for where, seconds in used.items():
                totals[name][1][where] = totals[name][1].get(where, 0.0) + seconds
    for name, server in servers.items():
        totals[name][2].add(hammer(server.port, application, 201, 1, ALONE_SECONDS))
    return totals


def report(label: str, figures: Figures, tally: Tally) -> None:
    timings, used, alone = figures
    p50, p99 = p50_p99(timings.seconds)
    count = max(1, len(timings.seconds))
    print(
        f"  {label:<24} n={len(timings.seconds):<6} {timings.rate:6.1f} req/s"
        f"   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms"
    )
    cpu = f"CPU per request: {used['server'] * 1000 / count:.2f} ms in gunicorn"
    if "mariadb" in used:
        cpu += f", {used['mariadb'] * 1000 / count:.2f} ms in MariaDB (server-wide)"
    print(f"  {'':<24} {cpu}")
    print(
        f"  {'':<24} per request: {tally.statements / COUNTED:.1f} statements "
        f"({tally.compiled / COUNTED:.1f} compiled anew), "
        f"{tally.transactions / COUNTED:.1f} transactions, {tally.pings / COUNTED:.1f} pings"
    )
    alone50, alone99 = p50_p99(alone.seconds)
    print(f"  {'':<24} one client alone: p50 {alone50:.1f} ms, p99 {alone99:.1f} ms")
    failures = timings.failures + alone.failures
    if failures:
        print(f"  {'':<24} {len(failures)} failed, first: {failures[0]}")


def verdict(dingpass: Figures, baseline: Figures) -> None:
    ratio = dingpass[0].rate / baseline[0].rate
    p99 = p50_p99(dingpass[0].seconds)[1]
    print(
        f"  rate dingpass / baseline: {ratio:.2f}x (goal >= {RATE_GOAL}x): "
        f"{_meets(ratio >= RATE_GOAL)}"
    )
    meets = _meets(p99 <= P99_GOAL_MS)
    print(f"  dingpass p99: {p99:.1f} ms (goal <= {P99_GOAL_MS:g} ms): {meets}")
    # The rates swing with whatever else this machine runs; the CPU a request costs, less so.
    cpu = _cpu_per_request(baseline) / _cpu_per_request(dingpass)
    print(f"  for scale, gunicorn CPU per request, baseline / dingpass: {cpu:.2f}x")


def _cpu_per_request(figures: Figures) -> float:
    return figures[1]["server"] / max(1, len(figures[0].seconds))


def _meets(good: bool) -> str:
    return "meets" if good else "BELOW"


def run(folder: Path, url: str, sandbox: Sandbox) -> tuple[dict[str, Figures], dict[str, Tally]]:
    """Both servers up side by side, measured in turns; then each app's database work."""
    mysql = url.startswith("mysql")
    baseline_url = url + ("?charset=utf8mb4" if mysql else "")
    with _disposed(create_engine(baseline_url)) as admin:
        metadata.create_all(admin)
    baseline = baseline_environment(folder, "bench.intake_baseline:create_app()")
    baseline[DATABASE_VARIABLE] = baseline_url
    backend = backend_environment(folder, url, sandbox.url)
    with served("baseline", baseline, folder) as bare, served("backend", backend, folder) as ours:
        totals = rounds({"baseline": bare, "dingpass": ours}, mariadb_pid() if mysql else None)
    bare_app, our_app = create_baseline(baseline_url), create_backend(Config.from_env(backend))
    tallies = {
        "baseline": counted(bare_app, bare_app.extensions["engine"]),
        "dingpass": counted(our_app, our_app.extensions["database"].engine),
    }
    return totals, tallies


@contextmanager
def _disposed(engine: Engine) -> Iterator[Engine]:
    try:
        yield engine
    finally:
        engine.dispose()


def main() -> None:
    # Only the figures: the sandbox's access lines would bury them.
    logging.basicConfig(level=logging.WARNING)
    sandbox = Sandbox(SandboxSettings(APP_KEY, APP_SECRET, PROCESS_CODE, stream=False)).start()
    with tempfile.TemporaryDirectory() as name, database_url(Path(name)) as url:
        totals, tallies = run(Path(name), url, sandbox)
    sandbox.stop()
    store = "MariaDB" if url.startswith("mysql") else "SQLite (no MariaDB answered)"
    print(
        f"intake: signed POST /applications, {CLIENTS} concurrent keep-alive clients, "
        f"{ROUNDS} x {SECONDS:g} s each, {store}, both under ./bootstrap's gunicorn command"
    )
    report("bare Flask, one INSERT", totals["baseline"], tallies["baseline"])
    report("dingpass backend", totals["dingpass"], tallies["dingpass"])
    verdict(totals["dingpass"], totals["baseline"])
    failed = sum(len(timings.failures + alone.failures) for timings, _, alone in totals.values())
    if failed:
        print(f"  {failed} requests failed: the figures count the good ones only")


if __name__ == "__main__":
    main()
