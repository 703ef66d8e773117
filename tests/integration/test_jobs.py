"""The job queue on real databases: claims, leases, retries, dependencies, conditions."""

import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, event, select

from backend.jobs import queue
from backend.jobs.model import Done, Retry, Wait
from backend.jobs.registry import JobKind, Registry
from backend.jobs.runner import Runner
from backend.storage.database import Database
from backend.storage.schema import jobs
from backend.subjects import Subject, SubjectType
from tests.conftest import ROOT, wait_for
from tests.integration.conftest import kinds_of, meanwhile

FAST_RETRY = Retry(max_attempts=3, first=timedelta(seconds=1), cap=timedelta(seconds=4))
APPLICATION = Subject.application(42)


def record(database, clock, kind: str, subject=APPLICATION, **options) -> int | None:
    with database.transaction() as connection:
        return queue.enqueue(connection, kind, subject, clock(), **options)


def status(database, job_id: int) -> tuple[str, int, str | None]:
    with database.transaction() as connection:
        row = connection.execute(select(jobs).where(jobs.c.id == job_id)).one()
    return row.status, row.attempts, row.last_error


def runner(database, clock, name=None, **handlers) -> Runner[None]:
    """A runner of ``handlers`` (kind=function of the job), with no services."""
    return Runner(database, kinds_of(**handlers), None, clock, name=name)


def test_recording_the_same_work_twice_keeps_one_job(database, clock):
    assert record(database, clock, "issue_license") is not None
    assert record(database, clock, "issue_license") is None


def test_a_job_runs_once_and_succeeds(database, clock):
    job_id, seen = record(database, clock, "work", payload={"n": 1}), []
    work = runner(database, clock, work=lambda job: seen.append(job.payload) or Done())
    assert work.run_due() == 1 and work.run_due() == 0
    assert seen == [{"n": 1}] and status(database, job_id)[0] == "succeeded"


def test_a_job_that_hands_its_work_on_is_followed_by_that_job_before_older_work(database, clock):
    ran = []

    def first(job):
        ran.append(("first", job.subject.id))
        return Done(then=record(database, clock, "second", job.subject))

    def second(job):
        ran.append(("second", job.subject.id))
        return Done()

    for application in (1, 2):
        record(database, clock, "first", Subject.application(application))
    assert runner(database, clock, first=first, second=second).run_due() == 4
    assert ran == [("first", "1"), ("second", "1"), ("first", "2"), ("second", "2")]


def test_work_handed_on_that_cannot_run_yet_leaves_the_runner_to_older_work(database, clock):
    blocker, ran = record(database, clock, "blocker", Subject.application(9)), []

    def first(job):
        ran.append(job.subject.id)
        return Done(then=record(database, clock, "second", job.subject, depends_on=[blocker]))

    for application in (1, 2):
        record(database, clock, "first", Subject.application(application))
    work = runner(database, clock, first=first, blocker=lambda job: Wait())
    assert work.run_due() == 3 and ran == ["1", "2"]


def test_a_job_that_always_fails_ends_failed_after_its_attempts(database, clock, caplog):
    job_id = record(database, clock, "doomed")

    def doomed(services, job):
        raise ConnectionRefusedError("SMTP server at 127.0.0.1:9 refused the connection")

    kinds: Registry[None] = Registry()
    kinds.add(JobKind("doomed", doomed, FAST_RETRY))
    doomed_runner = Runner(database, kinds, None, clock)
    for _ in range(3):
        assert doomed_runner.run_one()
        assert not doomed_runner.run_one()  # backing off: not due yet
        clock.advance(5)
    assert status(database, job_id) == (
        "failed",
        3,
        "ConnectionRefusedError: SMTP server at 127.0.0.1:9 refused the connection",
    )
    assert "FAILED after 3 attempts" in caplog.text and "application 42" in caplog.text


def test_a_kind_without_a_policy_of_its_own_takes_the_runners(database, clock):
    job_id = record(database, clock, "doomed")
    kinds = kinds_of(doomed=lambda job: 1 / 0)
    doomed_runner = Runner(database, kinds, None, clock, retry=Retry(max_attempts=1))
    assert doomed_runner.run_due() == 1
    assert status(database, job_id)[:2] == ("failed", 1)


def test_backoff_doubles_is_capped_and_jittered():
    retry = Retry(first=timedelta(seconds=2), cap=timedelta(seconds=60))
    delays = [retry.delay(n).total_seconds() for n in range(1, 9)]
    ceilings = [2, 4, 8, 16, 32, 60, 60, 60]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len({retry.delay(3) for _ in range(20)}) > 1


def test_a_job_waits_for_the_job_it_depends_on(database, clock):
    first = record(database, clock, "first")
    record(database, clock, "second", depends_on=[first])
    order = []
    ordered = runner(
        database,
        clock,
        first=lambda j: order.append("first") or Done(),
        second=lambda j: order.append("second") or Done(),
    )
    with database.transaction() as connection:  # make the dependent one look due first
        connection.execute(
            jobs.update()
            .where(jobs.c.kind == "second")
            .values(run_after=clock() - timedelta(hours=1))
        )
    ordered.run_due()
    assert order == ["first", "second"]


def test_a_job_whose_prerequisite_failed_does_not_run(database, clock):
    first = record(database, clock, "first")
    second = record(database, clock, "second", depends_on=[first])
    kinds = kinds_of(first=lambda job: 1 / 0, second=lambda job: Done())
    Runner(database, kinds, None, clock, retry=Retry(max_attempts=1)).run_due()
    assert status(database, first)[0] == "failed" and status(database, second)[0] == "queued"


def test_a_job_that_started_something_outside_rechecks_its_condition_later(database, clock):
    job_id, conditions = record(database, clock, "create_vpc"), []

    def create_vpc(job):
        conditions.append(job.condition)
        return Done() if job.condition else Wait({"vpc": "vpc-123"}, timedelta(seconds=30))

    vpcs = runner(database, clock, create_vpc=create_vpc)
    assert vpcs.run_due() == 1 and status(database, job_id)[0] == "waiting"
    clock.advance(31)
    assert vpcs.run_due() == 1
    assert conditions == [None, {"vpc": "vpc-123"}]
    assert status(database, job_id)[:2] == ("succeeded", 1)  # waiting is not a failed attempt


def test_a_job_whose_runner_vanished_is_taken_again_after_its_lease(database, clock):
    job_id = record(database, clock, "work")
    lost = queue.claim(database.transaction, "vanished", clock(), timedelta(minutes=5))
    assert queue.claim(database.transaction, "other", clock(), timedelta(minutes=5)) is None
    clock.advance(301)
    assert runner(database, clock, work=lambda job: Done()).run_due() == 1
    with database.transaction() as connection:
        assert not queue.finish(connection, lost, clock())  # the vanished runner's word is ignored
    assert status(database, job_id)[:2] == ("succeeded", 2)


def test_a_due_job_is_taken_in_one_transaction(database, clock):
    job_id, transactions = record(database, clock, "work"), []

    def counted():
        transactions.append(1)
        return database.transaction()

    taken = queue.claim(counted, "runner", clock(), timedelta(minutes=5))
    assert taken.id == job_id and len(transactions) == 1


@pytest.mark.mariadb
def test_a_job_another_runner_takes_meanwhile_leaves_the_claim_to_the_next(
    database_url, database, clock, snapshot_isolation
):
    first, second = record(database, clock, "work"), record(database, clock, "work", part="b")
    other, rivals = Database(database_url), []

    def rival_first(_conn, _cursor, statement, parameters, *_args):
        # Between this claim's search and its update of the oldest job, a rival takes it.
        if statement.startswith("UPDATE jobs") and parameters.get("id_1") == first and not rivals:
            rivals.append(queue.claim(other.transaction, "rival", clock(), timedelta(minutes=5)))

    mine = snapshot_isolation
    event.listen(mine.engine, "before_cursor_execute", rival_first)
    try:
        taken = queue.claim(mine.transaction, "runner", clock(), timedelta(minutes=5))
    finally:
        event.remove(mine.engine, "before_cursor_execute", rival_first)
        other.dispose()
    assert [job.id for job in rivals] == [first]
    assert taken.id == second and status(database, second)[:2] == ("running", 1)
    assert status(database, first)[:2] == ("running", 1)  # the rival's, taken once


@pytest.mark.mariadb
def test_retrying_every_failed_job_after_another_operators_retry_failed_again_queues_each(
    database_url, database, clock, snapshot_isolation, run_cli
):
    failed = [record(database, clock, "work", Subject.application(n)) for n in (1, 2)]
    doomed = Runner(database, kinds_of(work=lambda job: 1 / 0), None, clock, retry=Retry(1))
    doomed.run_due()

    def other_operator() -> None:  # the command has listed them: another's retry, run and failed
        with database.transaction() as other:
            assert all(queue.requeue(other, job_id, clock()) for job_id in failed)
        assert doomed.run_due() == 2

    def listing(sql: str) -> bool:
        return sql.startswith("SELECT jobs.") and "WHERE jobs.status =" in sql

    with meanwhile(Engine, listing, other_operator) as listed:
        result = run_cli("jobs", "retry", "--failed", env={"DATABASE_URL": database_url})
    assert listed and result.exit_code == 0, result.output
    assert f"Queued again: {failed[1]}, {failed[0]}." in result.output
    assert [status(database, job_id)[:2] for job_id in failed] == [("queued", 0)] * 2


def test_a_runner_whose_lease_ran_out_records_no_failure_of_the_job(database, clock):
    job_id = record(database, clock, "work")
    lost = queue.claim(database.transaction, "vanished", clock(), timedelta(minutes=5))
    clock.advance(301)
    assert runner(database, clock, work=lambda job: Done()).run_due() == 1
    with database.transaction() as connection:  # the vanished runner's failure comes too late
        assert queue.failed_attempt(connection, lost, clock(), "late", Retry(0)) is None
    assert status(database, job_id) == ("succeeded", 2, None)


def test_a_job_without_a_subject_names_a_part_of_its_key(database, clock):
    with pytest.raises(ValueError, match="needs a part of its own key"):
        record(database, clock, "digest", subject=None)
    job_id = record(database, clock, "digest", subject=None, part="2026-11-23")
    [job] = queue_listing(database)
    assert job.id == job_id and job.subject is None and job.dedupe_key == "digest:-:2026-11-23"


def test_keys_differ_by_case_and_by_a_trailing_space_on_every_database(database, clock):
    parts = ["vpc-A", "vpc-a", "vpc-a ", "vpc-é", "vpc-e"]
    assert all(record(database, clock, "open", APPLICATION, part=part) for part in parts)


def test_a_kind_or_key_too_long_for_its_column_is_refused_everywhere(database, clock):
    with pytest.raises(ValueError, match="too long"):
        record(database, clock, "k" * 33)
    with pytest.raises(ValueError, match="too long"):
        record(database, clock, "open", APPLICATION, part="p" * 200)


def queue_listing(database):
    with database.transaction() as connection:
        return queue.listing(connection)


@pytest.mark.mariadb
def test_four_runners_share_three_hundred_jobs_and_run_each_exactly_once(
    database_url, database, clock
):
    if not database_url.startswith("mysql"):
        pytest.skip("the concurrency this checks is MariaDB's")
    for n in range(300):
        record(database, clock, "count", Subject.application(n))
    runs, by_runner, lock = Counter(), Counter(), threading.Lock()

    def count(job):
        with lock:
            runs[job.id] += 1
            by_runner[threading.current_thread().name] += 1
        return Done()

    databases = [Database(database_url) for _ in range(4)]
    runners = [runner(db, clock, f"runner-{n}", count=count) for n, db in enumerate(databases)]
    threads = [threading.Thread(target=r.run_due, name=r.name) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for db in databases:
        db.dispose()
    assert len(runs) == 300 and set(runs.values()) == {1}
    assert set(by_runner) == {r.name for r in runners}  # they competed: each took some


@pytest.mark.mariadb
def test_a_runner_killed_mid_job_leaves_it_to_another(database_url, database, clock):
    if not database_url.startswith("mysql"):
        pytest.skip("one process per runner on MariaDB, as on Function Compute")
    with database.transaction() as connection:
        job_id = queue.enqueue(
            connection, "slow", APPLICATION, datetime.now(timezone.utc) - timedelta(seconds=1)
        )
    doomed = subprocess.Popen(
        [sys.executable, "tests/integration/slow_runner.py", database_url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert doomed.stdout.readline().strip() == f"running {job_id}"
    doomed.kill()  # SIGKILL: no cleanup, the lease stays
    doomed.wait()
    doomed.stdout.close()
    assert status(database, job_id)[0] == "running"
    clock.now = datetime.now(timezone.utc) + timedelta(minutes=6)
    assert runner(database, clock, "survivor", slow=lambda job: Done()).run_due() == 1
    assert status(database, job_id)[:2] == ("succeeded", 2)


def test_due_now_revives_a_failed_job_and_leaves_a_running_one_to_its_runner(database, clock):
    failed_app, running_app, missing_app = (Subject.application(n) for n in (1, 2, 3))
    failed = record(database, clock, "work", failed_app)
    Runner(database, kinds_of(work=lambda job: 1 / 0), None, clock, retry=Retry(1)).run_due()
    running = record(database, clock, "work", running_app)
    queue.claim(database.transaction, "busy", clock(), timedelta(minutes=5), only=running)
    with database.transaction() as connection:
        assert queue.due_now(connection, "work", failed_app, clock()) == failed
        assert queue.due_now(connection, "work", running_app, clock()) is None
        assert queue.due_now(connection, "work", missing_app, clock()) is not None  # recorded now
    assert status(database, failed)[:2] == ("queued", 0)
    assert status(database, running)[0] == "running"


def test_a_subject_of_another_type_is_refused_by_a_handler_of_applications():
    with pytest.raises(ValueError, match="change 7"):
        Subject(SubjectType.CHANGE, "7").number(SubjectType.APPLICATION)


def test_work_recorded_in_a_transaction_that_fails_is_not_recorded(database, clock):
    """A savepoint first in a transaction must not commit it on its own (pysqlite did)."""
    with pytest.raises(RuntimeError), database.transaction() as connection:
        with connection.begin_nested():  # as a numbered application or a batch of codes opens
            queue.enqueue(connection, "work", APPLICATION, clock())
        raise RuntimeError("the state change that called for it failed")
    assert queue_listing(database) == []


def test_a_runner_loop_comes_back_when_a_waiting_job_is_due_not_on_its_timer(database):
    checks: list[datetime] = []

    def settle(job):
        checks.append(datetime.now(timezone.utc))
        return Done() if len(checks) > 1 else Wait(check_in=timedelta(seconds=0.5))

    loop = runner(database, lambda: datetime.now(timezone.utc), settle=settle)
    record(database, lambda: datetime.now(timezone.utc), "settle")
    stop = threading.Event()
    thread = threading.Thread(target=loop.loop, args=(60, stop), daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: len(checks) == 2, seconds=10)  # not 60 s later, on the timer
    finally:
        stop.set()
        loop.kick()
        thread.join(timeout=10)
    assert checks[1] - checks[0] >= timedelta(seconds=0.5)


def test_an_invocation_runs_a_failed_job_again_when_its_backoff_ends(database):
    attempts: list[object] = []

    def flaky(job):
        attempts.append(job)
        if len(attempts) == 1:
            raise RuntimeError("DingTalk said: try again later")
        return Done()

    now = lambda: datetime.now(timezone.utc)  # noqa: E731 -- the real clock: it really waits
    retry = Retry(first=timedelta(seconds=0.3), cap=timedelta(seconds=1))
    invocation = Runner(database, kinds_of(flaky=flaky), None, now, retry=retry)
    record(database, now, "flaky")
    assert invocation.run_until(time.monotonic() + 20) == 2  # not on the timer's next minute


def test_an_invocation_returns_when_nothing_falls_due_before_its_deadline(database):
    now = lambda: datetime.now(timezone.utc)  # noqa: E731
    invocation = runner(database, now, later=lambda job: Wait(check_in=timedelta(minutes=5)))
    record(database, now, "later")
    started = time.monotonic()
    assert invocation.run_until(started + 20) == 1
    assert time.monotonic() - started < 10
