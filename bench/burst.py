"""A burst of 1,000 applications against DingTalk's real rate limit: 20 calls/s per API per app.

Goal (issue 13): every application's approval instance opened within 1.2 x 1000 / 20 s of the
first submission; at most 1.05 start/list/get calls to DingTalk per application; no call
refused for its rate (403 QpsLimitForAppkeyAndApi, or the old API's errcode 90018); none lost
(without an instance), none duplicated (two instances carrying its number).

Measured as deployed: each party in processes of its own, as on Function Compute. The backend
function is ./bootstrap's gunicorn on a loopback port with a backend's environment
(bench/served.py); SUBMITTERS keep-alive clients send it signed applications as fast as it
takes them, each applicant from an address and a mailbox of its own. RUNNERS runner processes,
each with its own connection pool and DingTalk client as function instances have, open the
instances. The DingTalk sandbox (bench/burst_sandbox.py) enforces its per-app, per-API limit in
QPS mode and records every call. This process only sends, watches the database and counts. The
database is MariaDB at 127.0.0.1:3306 when it answers, else SQLite.

How the runners are woken. On Function Compute intake kicks the runner function through FC's
API (backend/jobs/kick.py: an asynchronous invocation signed with the credentials FC puts in
each request's x-fc-* headers), and each invocation runs jobs as they fall due until none is
near (Runner.run_until). Played here, that would need FC's API stand-in
(bench/fc_invoke_standin.py) checking 1,000 signed calls and making 1,000 HTTP invocations, and
the runner function's gunicorn in place of the runners: a measure of the kick, which
bench/e2e_latency.py takes. What a kick amounts to for the burst is runners that are awake while
there is work, so the backend is served without FC_RUNNER_FUNCTION (it kicks no one) and each
runner passes every RUNNER_INTERVAL s when nothing is due sooner: an application waits at most
that long to be seen, nothing beside the time goal. The intake rate therefore leaves out the
kick's own cost (one call to FC's API per application).

`python bench/burst.py --applications 50` is a quick run (the goals scale with the count).
`python bench/burst.py --runner` is one runner: it builds itself from the environment, says
"ready", and runs until its input ends.
"""

import argparse
import itertools
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from scratch_database import database_url
from served import (
    KeptAlive,
    Served,
    Timings,
    backend_environment,
    ip_of,
    p50_p99,
    process_cpu_seconds,
    served,
    signed,
)
from sqlalchemy import func, select

from backend.clock import utc_now
from backend.config import Config
from backend.fulfillment.names import ADOPT_INSTANCE, OPEN_INSTANCE
from backend.jobs.model import JobStatus
from backend.storage.database import Database
from backend.storage.schema import applications, jobs
from backend.work import standalone_runner

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from tests.conftest import a_form  # noqa: E402

APPLICATIONS = 1000
QPS = 20
"""DingTalk's limit for a standard-edition organisation: calls per second per API per app."""
RUNNERS = 4
SUBMITTERS = 8
RUNNER_INTERVAL = 0.2
"""Seconds between a runner's passes when nothing falls due sooner: in place of the kick."""
TIME_GOAL = 1.2
"""Every instance opened within this many times APPLICATIONS / QPS seconds."""
CALLS_GOAL = 1.05
"""Start, list and get calls per application, at most."""
OPENING_APIS = ("start", "list", "get")
GIVE_UP_FACTOR, GIVE_UP_MARGIN = 4, 30.0
"""The bench stops waiting after GIVE_UP_FACTOR x the time goal + GIVE_UP_MARGIN seconds and
reports what it found: a run that slow has missed its goal anyway."""
POLL = 0.2
UNFINISHED = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.WAITING)
ERROR_CHARS = 160
"""Of each job error shown: enough to tell the causes apart."""
STOP_SECONDS = 60


@dataclass
class Intake:
    """What the submissions got back: the numbers given, each good answer's time, and what
    went wrong with the others."""

    numbers: list[str] = field(default_factory=list)
    timings: Timings = field(default_factory=Timings)

    def refused(self) -> Counter[str]:
        """The answers other than 201, by status (or the error that stood for one)."""
        kinds = (failure.split(" ", 1)[0].rstrip(":") for failure in self.timings.failures)
        return Counter(f"HTTP {kind}" if kind.isdigit() else kind for kind in kinds)


@dataclass(frozen=True)
class Seen:
    """What DingTalk saw: calls by (API, HTTP status), calls refused for their rate by API, and
    each license-form instance's application number and start (ms since the epoch)."""

    calls: Counter[tuple[str, int]]
    throttled: Counter[str]
    instances: list[tuple[str | None, int]]

    def per_number(self) -> Counter[str]:
        """How many instances carry each application number."""
        return Counter(number for number, _ in self.instances if number is not None)

    def first_and_last_start(self, since: float) -> tuple[float, float]:
        """When DingTalk started its first instance and its last, in seconds after ``since``
        (a time.time() value: the sandbox runs on this machine's clock)."""
        started = [created / 1000 - since for _, created in self.instances]
        return (min(started), max(started)) if started else (0.0, 0.0)


@dataclass(frozen=True)
class Outcome:
    """What the run found once every instance was opened (or the bench gave up)."""

    database: str  # mysql or sqlite
    intake: Intake
    opened_after: float | None  # seconds from the first submission; None: not all opened
    seen: Seen
    started: tuple[float, float]  # DingTalk's first and last instance, seconds into the run
    unrecorded: int  # applications the database does not know as opened
    job_errors: Counter[str]  # opening jobs not done: status and last error
    load: tuple[float, float]  # the 1-minute load average at the start and at the end
    cpu: dict[str, float]  # CPU seconds each party used during the run


class SandboxProcess:
    """bench/burst_sandbox.py: DingTalk's stand-in in a process of its own, asked over a pipe."""

    def __init__(self) -> None:
        command = [sys.executable, str(HERE / "burst_sandbox.py"), str(QPS)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.url = self._line()
        if not self.url.startswith("http://"):
            sys.exit(f"the DingTalk sandbox did not start (exit {self.process.poll()})")

    def seen(self) -> Seen:
        """What the sandbox saw until now."""
        assert self.process.stdin is not None
        self.process.stdin.write("report\n")
        self.process.stdin.flush()
        answer = json.loads(self._line())
        calls = Counter({(api, status): n for api, status, n in answer["calls"]})
        started = [(number, created) for number, created in answer["instances"]]
        return Seen(calls, Counter(answer["throttled"]), started)

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(STOP_SECONDS)

    def _line(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()


class RunnerProcesses:
    """RUNNERS runner processes (``--runner``) with the environment the backend has."""

    def __init__(self, env: dict[str, str]) -> None:
        command = [sys.executable, __file__, "--runner"]
        self.processes = [
            subprocess.Popen(
                command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            for _ in range(RUNNERS)
        ]
        for process in self.processes:
            assert process.stdout is not None
            if process.stdout.readline().strip() != "ready":
                self.stop()
                sys.exit(f"runner process {process.pid} did not start (exit {process.poll()})")

    def cpu_seconds(self) -> float:
        return sum(process_cpu_seconds(process.pid) for process in self.processes)

    def stop(self) -> None:
        """End every runner's loop (its input ends) and wait for it to exit."""
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.close()
        for process in self.processes:
            if process.wait(STOP_SECONDS) != 0:
                print(
                    f"runner process {process.pid} exited with {process.returncode}",
                    file=sys.stderr,
                )


def runner_main() -> None:
    """One runner process, built from the environment as the runner function is."""
    runner = standalone_runner(Config.from_env(os.environ), utc_now)
    stop = threading.Event()
    loop = threading.Thread(target=runner.loop, args=(RUNNER_INTERVAL, stop))
    loop.start()
    print("ready", flush=True)
    sys.stdin.read()  # until the bench closes our input
    stop.set()
    runner.kick()
    loop.join()
    runner.database.dispose()


@contextmanager
def dingtalk() -> Iterator[SandboxProcess]:
    sandbox = SandboxProcess()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@contextmanager
def runners(env: dict[str, str]) -> Iterator[RunnerProcesses]:
    processes = RunnerProcesses(env)
    try:
        yield processes
    finally:
        processes.stop()  # before the scratch database is dropped: they hold connections


def submit_all(port: int, count: int, intake: Intake) -> None:
    """Send ``count`` signed applications over SUBMITTERS keep-alive connections at once, as
    fast as the backend takes them."""
    numbers = itertools.count()  # next() on it is atomic: each client draws its own
    parts = [Timings() for _ in range(SUBMITTERS)]

    def client(timings: Timings) -> None:
        connection = KeptAlive(port)
        while (n := next(numbers)) < count:
            body = json.dumps(a_form(email=f"burst{n}@example.com")).encode()
            request = "POST", "/applications", body, signed("POST", "/applications", body, ip_of(n))
            failures = len(timings.failures)
            answer = connection.send(request, 201, timings)
            if len(timings.failures) == failures:
                intake.numbers.append(json.loads(answer)["number"])
        connection.connection.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(part,)) for part in parts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for part in parts:
        intake.timings.add(part)
    intake.timings.elapsed = time.perf_counter() - start


def opened(database: Database) -> int:
    """Applications the database knows as opened (an instance id recorded)."""
    with database.transaction() as connection:
        query = select(func.count()).select_from(applications)
        return int(
            connection.execute(query.where(applications.c.instance_id.isnot(None))).scalar() or 0
        )


def unfinished_opening_jobs(database: Database) -> int:
    """Jobs that open or adopt an instance and are not done yet (queued, running, waiting)."""
    with database.transaction() as connection:
        query = select(func.count()).select_from(jobs)
        where = jobs.c.kind.in_((OPEN_INSTANCE, ADOPT_INSTANCE)), jobs.c.status.in_(UNFINISHED)
        return int(connection.execute(query.where(*where)).scalar() or 0)


def opening_job_errors(database: Database) -> Counter[str]:
    """The last errors of opening jobs that are not done (or failed for good), by status and
    error: why applications are still without their instance."""
    with database.transaction() as connection:
        query = select(jobs.c.status, jobs.c.last_error).where(
            jobs.c.kind.in_((OPEN_INSTANCE, ADOPT_INSTANCE)), jobs.c.status != JobStatus.SUCCEEDED
        )
        rows = connection.execute(query).all()
    return Counter(f"{status}: {(error or 'no error yet')[:ERROR_CHARS]}" for status, error in rows)


def wait_until(done: Callable[[], bool], deadline: float) -> bool:
    """Poll ``done`` until it holds or ``deadline`` (a perf_counter value) passes."""
    while not done():
        if time.perf_counter() > deadline:
            return False
        time.sleep(POLL)
    return True


@dataclass(frozen=True)
class Parties:
    """The processes of a run, whose CPU time is counted."""

    backend: Served
    runners: RunnerProcesses
    sandbox: SandboxProcess

    def cpu_seconds(self) -> dict[str, float]:
        return {
            "backend": self.backend.cpu_seconds(),
            "runners": self.runners.cpu_seconds(),
            "DingTalk sandbox": process_cpu_seconds(self.sandbox.process.pid),
            "this bench": time.process_time(),
        }


def run(count: int) -> Outcome:
    """Serve the backend, start the runners and DingTalk, and send ``count`` applications."""
    with (
        tempfile.TemporaryDirectory() as folder,
        database_url(Path(folder)) as url,
        dingtalk() as sandbox,
    ):
        env = backend_environment(Path(folder), url, sandbox.url)
        with served("backend", env, Path(folder)) as backend, runners(env) as runner_processes:
            parties = Parties(backend, runner_processes, sandbox)
            database = Database(url)
            try:
                return watch(count, database, parties)
            finally:
                database.dispose()


def watch(count: int, database: Database, parties: Parties) -> Outcome:
    """Send ``count`` applications through intake, wait for every instance, take the figures."""
    intake, load, cpu = Intake(), os.getloadavg()[0], parties.cpu_seconds()
    started_at, since = time.perf_counter(), time.time()
    deadline = started_at + GIVE_UP_FACTOR * TIME_GOAL * count / QPS + GIVE_UP_MARGIN
    submitting = threading.Thread(
        target=submit_all, args=(parties.backend.port, count, intake), daemon=True
    )
    submitting.start()
    all_open = wait_until(
        lambda: not submitting.is_alive() and opened(database) >= len(intake.numbers), deadline
    )
    opened_after = time.perf_counter() - started_at if all_open else None
    # Retries still queued could yet start a second instance: count only once they are done.
    wait_until(lambda: unfinished_opening_jobs(database) == 0, deadline)
    used = parties.cpu_seconds()
    seen = parties.sandbox.seen()
    return Outcome(
        database.engine.dialect.name,
        intake,
        opened_after,
        seen,
        seen.first_and_last_start(since),
        len(intake.numbers) - opened(database),
        opening_job_errors(database),
        (load, os.getloadavg()[0]),
        {party: used[party] - cpu[party] for party in used},
    )


def verdict(meets: bool) -> str:
    return "meets the goal" if meets else "BELOW the goal"


def report(count: int, outcome: Outcome) -> None:
    intake, goal = outcome.intake, TIME_GOAL * count / QPS
    print(
        f"burst: {count} applications, DingTalk limited to {QPS} calls/s per API, "
        f"{RUNNERS} runner processes, {SUBMITTERS} submitting clients, database {outcome.database}"
    )
    print(
        f"  (machine: {os.cpu_count()} CPUs, load average {outcome.load[0]:.1f} at the start "
        f"of the run, {outcome.load[1]:.1f} at the end)"
    )
    report_intake(intake)
    report_opening(goal, outcome)
    report_calls(count, outcome.seen.calls)
    throttled = sum(outcome.seen.throttled.values())
    by_api = ", ".join(f"{api} {n}" for api, n in sorted(outcome.seen.throttled.items()))
    print(
        f"  refused for their rate (403 / 90018): {throttled}"
        f"{f' ({by_api})' if by_api else ''}   goal 0: {verdict(throttled == 0)}"
    )
    report_lost_and_duplicated(count, outcome)
    cpu = ", ".join(f"{party} {seconds:.1f}" for party, seconds in outcome.cpu.items())
    print(f"  CPU seconds used in the run: {cpu}")


def report_intake(intake: Intake) -> None:
    timings = intake.timings
    refused = ", ".join(f"{n} x {s}" for s, n in sorted(intake.refused().items())) or "none"
    p50, p99 = p50_p99(timings.seconds) if timings.seconds else (0.0, 0.0)
    print(
        f"  intake: {len(intake.numbers)} taken in {timings.elapsed:.1f} s "
        f"({timings.rate:.0f}/s, p50 {p50:.0f} ms, p99 {p99:.0f} ms), refused: {refused}"
    )


def report_opening(goal: float, outcome: Outcome) -> None:
    after = outcome.opened_after
    waited = GIVE_UP_FACTOR * goal + GIVE_UP_MARGIN
    took = f"after {after:.1f} s" if after is not None else f"NOT within {waited:.0f} s"
    met = after is not None and after <= goal
    print(f"  every instance opened {took}   goal <= {goal:.1f} s: {verdict(met)}")
    count_started, (first, last) = len(outcome.seen.instances), outcome.started
    if last > first:
        print(
            f"  DingTalk started {count_started} instances from {first:.1f} s to {last:.1f} s: "
            f"{count_started / (last - first):.1f}/s (it allows {QPS}/s)"
        )


def report_calls(count: int, calls: Counter[tuple[str, int]]) -> None:
    per_api = Counter[str]()
    for (api, _status), n in calls.items():
        per_api[api] += n
    shown = ", ".join(f"{api} {per_api[api]}" for api in (*OPENING_APIS, "token"))
    opening = sum(per_api[api] for api in OPENING_APIS)
    print(f"  DingTalk calls: {shown} (all answers, refused ones too)")
    print(
        f"  start/list/get calls per application: {opening / count:.3f}   "
        f"goal <= {CALLS_GOAL}: {verdict(opening / count <= CALLS_GOAL)}"
    )


def report_lost_and_duplicated(count: int, outcome: Outcome) -> None:
    instances = outcome.seen.per_number()
    with_instance = set(instances) & set(outcome.intake.numbers)
    lost = count - len(with_instance)  # a submission intake refused is lost to its applicant
    print(
        f"  lost (no instance in DingTalk): {lost}   goal 0: {verdict(lost == 0)}"
        f"   (not recorded as opened in the database: {outcome.unrecorded})"
    )
    for error, n in outcome.job_errors.most_common(5):
        print(f"    opening jobs not done: {n} x {error}")
    twice = [number for number, n in instances.items() if n > 1]
    extra = sum(instances[number] - 1 for number in twice)
    print(
        f"  duplicated (one number on several instances): {len(twice)} ({extra} extra instances)"
        f"   goal 0: {verdict(not twice)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--applications", type=int, default=APPLICATIONS, help="how many (default %(default)s)"
    )
    parser.add_argument("--runner", action="store_true", help="be one runner process")
    arguments = parser.parse_args()
    if arguments.applications < 1:
        parser.error("--applications must be 1 or more")
    # Only the figures, and jobs that gave up: the runners' lines would bury them.
    logging.basicConfig(level=logging.ERROR)
    if arguments.runner:
        runner_main()
        return
    report(arguments.applications, run(arguments.applications))


if __name__ == "__main__":
    main()
