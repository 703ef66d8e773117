"""The proxy hop: what the frontend adds to a request it forwards to the backend.

Both functions run as Function Compute starts them (./bootstrap frontend, ./bootstrap backend,
on loopback), the frontend's BACKEND_URL pointing at the backend. One client, on a kept-alive
connection to each, sends REQUESTS sequential status reads of one application through the
frontend (GET /api/applications/<token>, which it signs and forwards) and as many signed
straight to the backend (GET /applications/<token>), alternating, so both see the same machine
at the same moment. For scale, also each function's /healthz, which never leaves the function,
and the CPU time the frontend's processes spend on each request of either kind.

Beside the frontend, in the same turns, its floor (bench/proxy_floor_app.py): a bare Flask app
under the very same gunicorn command that signs the read and forwards it over a kept-alive
connection, and nothing more. Its hop is what the stack alone costs on this machine (gunicorn's
worker, Flask, http.client, one more loopback crossing); the frontend's distance above it is
dingpass's own.

Goal (issue 13): the hop adds at most 1 ms to the p50 (keep-alive pooled connections).
"""

import json
import logging
import tempfile
from pathlib import Path

from scratch_database import database_url
from served import (
    APP_KEY,
    APP_SECRET,
    PROCESS_CODE,
    KeptAlive,
    Request,
    Served,
    Timings,
    backend_environment,
    base_environment,
    baseline_environment,
    p50_p99,
    served,
    signed,
)

from sandbox.server import Sandbox, SandboxSettings

REQUESTS = 3000
WARMUP = 200
GOAL_MS = 1.0
FLOOR_APP = "bench.proxy_floor_app:app"
FORM = {
    "product": "acme-erp",
    "feature_code": "9F2C-41AB-77D0-E5C3",
    "company": "杭州示例网络科技有限公司",
    "contact": "张三",
    "email": "hop@example.com",
    "quantity": 5,
    "validity": "1y",
}


def submitted(backend: int) -> str:
    """The status token of an application submitted straight to the backend."""
    body = json.dumps(FORM).encode()
    timings = Timings()
    answer = KeptAlive(backend).send(
        ("POST", "/applications", body, signed("POST", "/applications", body)), 201, timings
    )
    assert not timings.failures, timings.failures
    token: str = json.loads(answer)["token"]
    return token


def alternate(pairs: list[tuple[KeptAlive, Request]], count: int) -> list[Timings]:
    """Each request of ``pairs`` in turn, ``count`` times; their timings in that order."""
    timings = [Timings() for _ in pairs]
    for _ in range(count):
        for (client, request), timing in zip(pairs, timings, strict=True):
            client.send(request, 200, timing)
    return timings


def measure(
    front: Served, floor: Served, back: Served, token: str
) -> tuple[list[Timings], list[float]]:
    """Status reads through the frontend, through the floor and direct, then the frontend's
    and the backend's /healthz, each set alternating; and the frontend's CPU milliseconds per
    request it served, status reads and /healthz."""
    proxied, floored, direct = KeptAlive(front.port), KeptAlive(floor.port), KeptAlive(back.port)
    path = f"/applications/{token}"

    def status_pairs() -> list[tuple[KeptAlive, Request]]:
        # Signed anew each time round: a signature holds for a few minutes only.
        via = ("GET", f"/api{path}", b"", {})
        return [(proxied, via), (floored, via), (direct, signed_get(path))]

    alternate(status_pairs(), WARMUP)
    reads, used = [Timings(), Timings(), Timings()], front.cpu_seconds()
    for _ in range(REQUESTS // 100):
        for total, part in zip(reads, alternate(status_pairs(), 100), strict=True):
            total.add(part)
    read_cpu, used = front.cpu_seconds() - used, front.cpu_seconds()
    health: list[tuple[KeptAlive, Request]] = [
        (proxied, ("GET", "/healthz", b"", {})),
        (direct, ("GET", "/healthz", b"", {})),
    ]
    healthz = alternate(health, REQUESTS)
    health_cpu = front.cpu_seconds() - used
    return reads + healthz, [read_cpu * 1000 / REQUESTS, health_cpu * 1000 / REQUESTS]


def signed_get(path: str) -> Request:
    """A GET signed as the proxy signs it (no body, so no Content-Type)."""
    headers = signed("GET", path)
    del headers["Content-Type"]
    return "GET", path, b"", headers


def report(label: str, timings: Timings) -> tuple[float, float]:
    p50, p99 = p50_p99(timings.seconds)
    failed = f"   {len(timings.failures)} failed: {timings.failures[0]}" if timings.failures else ""
    print(f"  {label:<44} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms{failed}")
    return p50, p99


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    sandbox = Sandbox(SandboxSettings(APP_KEY, APP_SECRET, PROCESS_CODE, stream=False)).start()
    with tempfile.TemporaryDirectory() as name, database_url(Path(name)) as url:
        folder = Path(name)
        with served("backend", backend_environment(folder, url, sandbox.url), folder) as back:
            front_env = {**base_environment(folder), "BACKEND_URL": back.url}
            floor_env = {**baseline_environment(folder, FLOOR_APP), "BACKEND_URL": back.url}
            with (
                served("frontend", front_env, folder) as front,
                served("floor", floor_env, folder) as floor,
            ):
                figures, cpu = measure(front, floor, back, submitted(back.port))
    sandbox.stop()
    print_figures(figures, cpu)


def print_figures(figures: list[Timings], cpu: list[float]) -> None:
    """The reads' and /healthz's figures, the frontend's CPU, the hop's and its floor's."""
    print(
        f"proxy_hop: {REQUESTS} sequential requests each on one keep-alive client, alternating;"
        " the functions and the floor under ./bootstrap's gunicorn command"
    )
    via, via99 = report("GET /api/applications/<token> via the frontend", figures[0])
    floor, floor99 = report("the same via the floor", figures[1])
    direct, direct99 = report("GET /applications/<token> signed, direct", figures[2])
    report("frontend /healthz (no backend call)", figures[3])
    report("backend /healthz", figures[4])
    print(
        f"  frontend CPU per request (master and workers): {cpu[0]:.2f} ms a proxied read, "
        f"{cpu[1]:.2f} ms a /healthz"
    )
    added = via - direct
    print(f"  the hop adds: p50 {added:+.2f} ms, p99 {via99 - direct99:+.2f} ms")
    print(
        f"  the floor's hop adds: p50 {floor - direct:+.2f} ms, p99 {floor99 - direct99:+.2f} ms;"
        f" the frontend is p50 {via - floor:+.2f} ms above it"
    )
    verdict = "meets" if added <= GOAL_MS else "BELOW"
    print(f"  goal p50 <= +{GOAL_MS:g} ms: {verdict}")


if __name__ == "__main__":
    main()
