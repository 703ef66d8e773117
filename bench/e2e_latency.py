"""Approval to mailbox: from the approval event reaching the callback to the license mail
accepted by SMTP, for every approval.

Goal (issue 5): p50 under 0.1 s and p99 under 0.5 s with the kick, in this process and on
Function Compute; the loaded runs are held to the same goal. Every approval counts: one whose
mail has not arrived DEADLINE s after its decision is undelivered, a failure, and counts as
"never" in the percentiles.

Everything runs on loopback in this process: intake, the DingTalk sandbox pushing encrypted
events to the approval callback, the runner, the mail sandbox's real SMTP server, and each
scenario's own scratch database (MariaDB when it answers, else SQLite). The scenarios:

- in-process kick: the approval function wakes a runner loop in this process;
- Function Compute kick: the approval function, behind a stand-in of FC's HTTP trigger, kicks
  through a stand-in of FC's API, which invokes the runner function over HTTP asynchronously.
  There is no timer: a lost kick is an undelivered mail;
- timer alone: no kick, only the runner loop's timer, every TIMER_INTERVAL s;
- loaded: LOADED approvals decided within one second, with each kick.

Decisions come as a Poisson stream of RATE a second (so every moment of the timer's period is
sampled); in the loaded runs, at random moments of one second. Each function shares this
process and the machine's cores with the others and the sandboxes, where FC would give each
instance its own: the loaded figures are this machine's, not FC's capacity.

Beside the figures: transactions per approval, how long the callback took to answer (DingTalk
waits 1.5 s, then pushes again at +10 s and +30 s), and on FC how long the kick's
InvokeFunction took and what FC's API did with the invocations.
"""

import argparse
import logging
import math
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from approval.app import create_app as create_approval
from backend.app import create_app as create_backend
from backend.clock import utc_now
from backend.config import Config
from backend.jobs.kick import configured_kick
from backend.work import standalone_runner
from license.keys import generate, private_pem
from runner.app import create_app as create_runner
from sandbox.delivery import CallbackTarget
from sandbox.mail import MailSandbox
from sandbox.server import Sandbox, SandboxSettings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from fc_invoke_standin import AsyncInvoker, WsgiApp, http_trigger  # noqa: E402
from scratch_database import database_url  # noqa: E402

from tests.conftest import a_form  # noqa: E402
from tests.integration.conftest import SECRET as PROXY_SECRET  # noqa: E402
from tests.integration.conftest import LiveServer, SignedClient  # noqa: E402
from tests.integration.fc_front_door import FcFrontDoor, Sts  # noqa: E402

APPROVALS = 300
RATE = 5.0
"""Decisions a second, on average, in the paced runs: a few overlap, as in a busy office."""
LOADED = 100
DEADLINE = 60.0
"""Seconds after its decision by which an approval's mail must have arrived: FC's timer period.
Long enough for a loaded run to drain and for DingTalk's retries of a failed push (at +10 s
and +30 s), so each latency is measured; a kick lost on FC would wait this long for the timer."""
TIMER_INTERVAL = 2.0
"""Seconds: the runner loop's stand-in for FC's one-minute timer."""
GOAL_P50, GOAL_P99 = 0.1, 0.5
SETUP_THREADS = 4
"""Applications submitted, and runners opening their instances, at once: the setup is not
measured, and waits on the database more than it computes."""
OPENING = 180.0
"""Seconds the runner may take to open the setup's approval instances in DingTalk."""
AES_KEY, TOKEN = "dP7s3kQ9vX2mL8nR4tY6wZ1aB5cD0eF3gH7jK9pQ2rS", "bench-token"
APP_KEY, APP_SECRET = "benchappkey", "bench-app-secret"
SIGNING_KEY = private_pem(generate()).decode()
"""Configured, as in production: not the development key made on first use."""
RUNNER = "dingpass-runner"
ROLE = Sts("STS.bench-key", "bench-secret", "bench-sts-token", frozenset({RUNNER}))
"""What FC hands the approval and runner functions: a role that may invoke the runner."""
NETWORKS = ("192.0.2", "198.51.100", "203.0.113")
"""Documentation ranges: applicants' addresses, 250 in each, so no one meets the IP limit."""

Moments = Callable[[random.Random, int], list[float]]
"""When each of n decisions comes, in seconds from the first."""


def poisson(rate: float) -> Moments:
    """A Poisson stream of ``rate`` decisions a second."""

    def moments(rng: random.Random, count: int) -> list[float]:
        found, at = [], 0.0
        for _ in range(count):
            found.append(at)
            at += rng.expovariate(rate)
        return found

    return moments


def one_second(rng: random.Random, count: int) -> list[float]:
    """Random moments of one second."""
    return sorted(rng.uniform(0.0, 1.0) for _ in range(count))


@dataclass(frozen=True)
class Scenario:
    """One run: how the runner is woken, how many approvals, when they are decided."""

    name: str
    kick: str
    """"process" (in-process kick), "fc" (Function Compute kick) or "timer" (none)."""
    approvals: int
    moments: Moments
    held_to_goal: bool


class Commits:
    """Transactions ended by any engine in this process (all the functions run here)."""

    def __init__(self) -> None:
        self.count, self._lock = 0, threading.Lock()
        event.listen(Engine, "commit", self._one)

    def _one(self, _connection: Any) -> None:
        with self._lock:
            self.count += 1


COMMITS = Commits()


@dataclass
class Watch:
    """When each event was first pushed and each license mail arrived (time.perf_counter())."""

    pushed: dict[str, float]
    arrived: dict[str, float]
    answers: list[float] = field(default_factory=list)
    """Seconds the callback took to answer each push."""
    kicks: list[float] = field(default_factory=list)
    """Seconds each FC kick (InvokeFunction, inside the callback) took."""


@dataclass(frozen=True)
class Result:
    """Latencies of every approval in seconds (math.inf: undelivered), and notes on the run."""

    scenario: Scenario
    latencies: list[float]
    notes: list[str]

    @property
    def delivered(self) -> int:
        return sum(math.isfinite(x) for x in self.latencies)


def watched_mail(watch: Watch) -> MailSandbox:
    """The mail sandbox, noting when each recipient's license mail (it carries the file) arrives."""
    mail = MailSandbox().start()
    keep = mail.mailbox.add

    def add(raw: bytes, recipients: list[str]) -> int:
        now = time.perf_counter()
        number = keep(raw, recipients)
        if next(mail.mailbox.messages[number].iter_attachments(), None) is not None:
            for recipient in recipients:
                watch.arrived.setdefault(recipient, now)
        return number

    mail.mailbox.add = add  # type: ignore[method-assign]
    return mail


def watched_dingtalk(watch: Watch) -> Sandbox:
    """The DingTalk sandbox, noting when each instance's event is first pushed."""
    sandbox = Sandbox(SandboxSettings(APP_KEY, APP_SECRET, "PROC-BENCH", stream=False)).start()
    keep = sandbox.deliverer.push

    def push(message: dict[str, Any]) -> bool:
        watch.pushed.setdefault(message["processInstanceId"], time.perf_counter())
        return keep(message)

    sandbox.deliverer.push = push  # type: ignore[method-assign]
    return sandbox


def bench_config(url: str, sandbox: Sandbox, mail: MailSandbox, folder: Path) -> Config:
    return Config(
        database_url=url,
        proxy_secret=PROXY_SECRET,
        catalogue_file=ROOT / "catalogue.toml",
        dingtalk_app_key=APP_KEY,
        dingtalk_app_secret=APP_SECRET,
        dingtalk_process_code="PROC-BENCH",
        dingtalk_originator_user_id="boss",
        dingtalk_api_base=sandbox.url,
        dingtalk_oapi_base=sandbox.url,
        dingtalk_callback_token=TOKEN,
        dingtalk_callback_aes_key=AES_KEY,
        smtp_port=mail.smtp_port,
        license_signing_key=SIGNING_KEY,
        var_dir=folder,
    )


def apply(config: Config, count: int) -> list[str]:
    """Submit ``count`` applications, SETUP_THREADS at a time; their emails."""
    backend = create_backend(config, kick=lambda: None)  # the setup's runners open them after
    api, emails = SignedClient(backend), [f"bench{n}@example.com" for n in range(count)]

    def submit(n: int) -> None:
        answer = api.post("/applications", a_form(email=emails[n]), ip=applicant_ip(n))
        if answer.status_code != 201:
            sys.exit(f"application {n} was refused ({answer.status_code}): {answer.get_data()!r}")

    with ThreadPoolExecutor(SETUP_THREADS) as pool:
        list(pool.map(submit, range(count)))
    backend.extensions["database"].dispose()
    return emails


def applicant_ip(n: int) -> str:
    return f"{NETWORKS[n // 250]}.{n % 250 + 1}"


def open_instances(config: Config, sandbox: Sandbox, emails: list[str]) -> dict[str, str]:
    """Have SETUP_THREADS runners open every application's approval in DingTalk; each email's
    instance."""
    deadline = time.monotonic() + OPENING
    # The sandbox limits no calls, and the setup is not measured: no spacing them out either.
    unlimited = replace(config, dingtalk_calls_per_second=0)

    def work() -> None:
        runner = standalone_runner(unlimited, utc_now)
        while len(sandbox.state.instances) < len(emails) and time.monotonic() < deadline:
            if not runner.run_due():
                time.sleep(0.1)  # a failed opening waits for its retry
        runner.database.dispose()

    # One opening first, which stores DingTalk's token: runners that all fetch one at once
    # deadlock on storing it (MariaDB 1213), and their openings then wait minutes to retry.
    first = standalone_runner(unlimited, utc_now)
    first.run_one()
    first.database.dispose()
    with ThreadPoolExecutor(SETUP_THREADS) as pool:
        list(pool.map(lambda _: work(), range(SETUP_THREADS)))
    by_email = {}
    for instance in list(sandbox.state.instances.values()):
        form = {v["name"]: v["value"] for v in instance.form}
        by_email[form["邮箱"]] = instance.id
    if len(by_email) < len(emails):
        sys.exit(f"only {len(by_email)} of {len(emails)} instances opened within {OPENING:g} s")
    return by_email


def in_process(config: Config, stack: ExitStack, kicked: bool) -> WsgiApp:
    """The approval function, with a runner loop in this process (kicked, or on its timer)."""
    runner = standalone_runner(config, utc_now)
    stop = threading.Event()
    loop = threading.Thread(target=runner.loop, args=(TIMER_INTERVAL, stop), daemon=True)
    loop.start()

    def close() -> None:
        stop.set()
        runner.kick()
        loop.join()
        runner.database.dispose()

    stack.callback(close)
    approval = create_approval(config, kick=runner.kick if kicked else None)
    stack.callback(approval.extensions["database"].dispose)
    return approval


def on_function_compute(
    config: Config, stack: ExitStack, watch: Watch
) -> tuple[WsgiApp, AsyncInvoker]:
    """The approval function behind FC's HTTP trigger, kicking the runner function through
    FC's API, which invokes it over HTTP (both stand-ins)."""
    runner = create_runner(config)
    stack.callback(runner.extensions["database"].dispose)
    runner_url = serve(runner, stack)
    invoker = AsyncInvoker(FcFrontDoor([ROLE]), {RUNNER: runner_url}, ROLE)
    stack.callback(invoker.close)  # before the runner function stops serving
    fc_api = serve(invoker, stack)
    on_fc = replace(config, fc_runner_function=RUNNER, fc_endpoint=fc_api)
    kick = configured_kick(on_fc.fc_runner_function, on_fc.fc_endpoint)
    assert kick is not None  # FC_RUNNER_FUNCTION is set just above
    approval = create_approval(on_fc, kick=timed_call(kick, watch.kicks))
    stack.callback(approval.extensions["database"].dispose)
    return http_trigger(approval, ROLE), invoker


def timed_call(call: Callable[[], None], into: list[float]) -> Callable[[], None]:
    def timed() -> None:
        started = time.perf_counter()
        call()
        into.append(time.perf_counter() - started)

    return timed


def timed_app(app: WsgiApp, into: list[float]) -> WsgiApp:
    """``app``, noting how long it takes to answer each request, body and all."""

    def timed(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        started = time.perf_counter()
        body = app(environ, start_response)
        try:
            answer = list(body)
        finally:
            getattr(body, "close", lambda: None)()
        into.append(time.perf_counter() - started)
        return answer

    return timed


def serve(app: WsgiApp, stack: ExitStack) -> str:
    server = LiveServer(app)
    stack.callback(server.stop)
    return server.url


def decide(sandbox: Sandbox, instances: list[str], moments: list[float]) -> dict[str, float]:
    """Approve each instance at its moment; when each was decided."""
    decided, start = {}, time.perf_counter()
    for instance_id, moment in zip(instances, moments, strict=True):
        time.sleep(max(0.0, start + moment - time.perf_counter()))
        decided[instance_id] = time.perf_counter()
        instance = sandbox.state.decide(instance_id, "approve")
        if instance is None:
            sys.exit(f"instance {instance_id} is not running: it cannot be approved")
        sandbox.deliverer.publish(instance)
    return decided


def latencies(watch: Watch, decided: dict[str, float], emails: dict[str, str]) -> list[float]:
    """Each approval's latency from its push; math.inf if its mail missed the deadline."""
    last = max(decided.values()) + DEADLINE
    while len(watch.arrived) < len(decided) and time.perf_counter() < last:
        time.sleep(0.01)
    found = []
    for instance_id, at in decided.items():
        arrived = watch.arrived.get(emails[instance_id])
        if arrived is None or arrived - at > DEADLINE:
            found.append(math.inf)
        else:
            found.append(arrived - watch.pushed.get(instance_id, at))
    return found


def run(scenario: Scenario, folder: Path, rng: random.Random) -> Result:
    """One scenario on its own database, sandboxes and functions."""
    started = time.monotonic()
    with ExitStack() as stack:
        url = stack.enter_context(database_url(folder))
        watch = Watch({}, {})
        mail = watched_mail(watch)
        stack.callback(mail.stop)
        sandbox = watched_dingtalk(watch)
        stack.callback(sandbox.stop)
        config = bench_config(url, sandbox, mail, folder)
        by_email = open_instances(config, sandbox, apply(config, scenario.approvals))
        set_up = time.monotonic()
        invoker = None
        if scenario.kick == "fc":
            callback, invoker = on_function_compute(config, stack, watch)
        else:
            callback = in_process(config, stack, kicked=scenario.kick == "process")
        callback_url = serve(timed_app(callback, watch.answers), stack)
        sandbox.deliverer.target = CallbackTarget(
            f"{callback_url}/dingtalk/callback", TOKEN, AES_KEY, APP_KEY
        )
        instances, committed = list(by_email.values()), COMMITS.count
        decided = decide(sandbox, instances, scenario.moments(rng, len(instances)))
        found = latencies(watch, decided, {i: e for e, i in by_email.items()})
        per_approval = (COMMITS.count - committed) / len(instances)
    notes = [
        f"database: {url.partition(':')[0]}, {per_approval:.1f} transactions per approval; "
        f"set up in {set_up - started:.0f} s, run in {time.monotonic() - set_up:.0f} s",
        f"callback answered in {spread(watch.answers)}"
        + (f"; its FC kick (InvokeFunction) took {spread(watch.kicks)}" if watch.kicks else ""),
        *push_failures(sandbox),
    ]
    if invoker is not None:  # counted once the invocations under way have finished
        notes.append(invoker.tally.summary())
        notes.extend(f"invocation failed: {failure}" for failure in invoker.tally.failed[:3])
    return Result(scenario, found, notes)


def push_failures(sandbox: Sandbox) -> list[str]:
    failed = sum(not push.success for push in sandbox.state.pushes)
    if not failed:
        return []
    return [f"callback pushes that failed (DingTalk retries at +10 s, +30 s): {failed}"]


def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank: the smallest value at or above ``fraction`` of them."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def spread(values: list[float]) -> str:
    if not values:
        return "(none)"
    return " ".join(
        f"{name} {percentile(values, q) * 1000:.0f} ms"
        for name, q in (("p50", 0.5), ("p99", 0.99), ("max", 1.0))
    )


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms" if math.isfinite(seconds) else "  never   "


def report(result: Result) -> bool:
    """Print one scenario's figures and verdicts; whether it met its goals."""
    values, scenario = result.latencies, result.scenario
    p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
    print(
        f"  {scenario.name:<40} approved {len(values):>3}  delivered {result.delivered:>3}  "
        f"p50 {ms(p50)}  p99 {ms(p99)}  max {ms(max(values))}"
    )
    for note in result.notes:
        print(f"      {note}")
    all_there = result.delivered == len(values)
    print(
        f"      every license mail within {DEADLINE:g} s of its approval "
        f"({result.delivered} delivered / {len(values)} approved): {verdict(all_there)}"
    )
    if not scenario.held_to_goal:
        return all_there
    fast = p50 < GOAL_P50 and p99 < GOAL_P99
    print(f"      p50 < {GOAL_P50 * 1000:g} ms and p99 < {GOAL_P99 * 1000:g} ms: {verdict(fast)}")
    return all_there and fast


def verdict(good: bool) -> str:
    return "meets the goal" if good else "BELOW the goal"


def scenarios(approvals: int, rate: float) -> list[Scenario]:
    paced = poisson(rate)
    return [
        Scenario("in-process kick", "process", approvals, paced, True),
        Scenario("Function Compute kick", "fc", approvals, paced, True),
        Scenario(f"timer alone (every {TIMER_INTERVAL:g} s)", "timer", approvals, paced, False),
        Scenario(f"loaded ({LOADED} in 1 s), in-process kick", "process", LOADED, one_second, True),
        Scenario(f"loaded ({LOADED} in 1 s), FC kick", "fc", LOADED, one_second, True),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--approvals", type=int, default=APPROVALS, help="per paced scenario")
    parser.add_argument("--rate", type=float, default=RATE, help="paced decisions a second")
    parser.add_argument("--only", help="run only the scenarios whose name contains this")
    args = parser.parse_args()
    # Only the figures: the servers' access lines and the stack's info logs would bury them.
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # The DingTalk sandbox's pool of connections overflows when it pushes a crowd of events.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    rng = random.Random(13)  # noqa: S311 -- spread, not secrecy; the same stream each run
    chosen = [s for s in scenarios(args.approvals, args.rate) if (args.only or "") in s.name]
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        results = [run(scenario, Path(folder), rng) for scenario in chosen]
    print(
        "e2e_latency: approval event at the callback -> license mail accepted by SMTP; "
        f"paced at {args.rate:g} decisions/s (Poisson), {LOADED} within 1 s when loaded"
    )
    met = [report(result) for result in results]
    took = time.monotonic() - started
    print(f"  whole run: {took:.0f} s; {sum(met)} of {len(met)} scenarios meet their goals")


if __name__ == "__main__":
    main()
