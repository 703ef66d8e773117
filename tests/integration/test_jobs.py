"""The job queue on real databases: claims, leases, retries, dependencies, conditions."""

import subprocess
import sys
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, select

from backend.jobs import queue
from backend.jobs.model import Done, Retry, Wait
from backend.jobs.runner import Runner
from backend.storage.database import Database
from backend.storage.schema import applications, jobs
from tests.conftest import ROOT
from tests.integration.test_migrations import ROW

FAST_RETRY = Retry(max_attempts=3, first=timedelta(seconds=1), cap=timedelta(seconds=4))


def applications_for(database, count: int) -> list[int]:
    rows = [{**ROW, "number": f"A20261123-{n:06d}", "token": f"t{n:031d}"} for n in range(count)]
    with database.transaction() as connection:
        connection.execute(insert(applications), rows)
        return list(
            connection.execute(select(applications.c.id).order_by(applications.c.id)).scalars()
        )


def record(database, clock, kind: str, application_id: int, **options) -> int:
    with database.transaction() as connection:
        return queue.enqueue(connection, kind, application_id, clock(), **options)


def status(database, job_id: int) -> tuple[str, int, str | None]:
    with database.transaction() as connection:
        row = connection.execute(select(jobs).where(jobs.c.id == job_id)).one()
    return row.status, row.attempts, row.last_error


def test_recording_the_same_work_twice_keeps_one_job(database, clock):
    (app,) = applications_for(database, 1)
    assert record(database, clock, "issue_license", app) is not None
    assert record(database, clock, "issue_license", app) is None


def test_a_job_runs_once_and_succeeds(database, clock):
    (app,) = applications_for(database, 1)
    job_id, seen = record(database, clock, "work", app, payload={"n": 1}), []
    runner = Runner(database, {"work": lambda job: seen.append(job.payload) or Done()}, clock)
    assert runner.run_due() == 1 and runner.run_due() == 0
    assert seen == [{"n": 1}] and status(database, job_id)[0] == "succeeded"


def test_a_job_that_always_fails_ends_failed_after_its_attempts(database, clock, caplog):
    (app,) = applications_for(database, 1)
    job_id = record(database, clock, "doomed", app, retry=FAST_RETRY)

    def doomed(job):
        raise ConnectionRefusedError("SMTP server at 127.0.0.1:9 refused the connection")

    runner = Runner(database, {"doomed": doomed}, clock, retry=FAST_RETRY)
    for _ in range(3):
        assert runner.run_one()
        assert not runner.run_one()  # backing off: not due yet
        clock.advance(5)
    assert status(database, job_id) == (
        "failed",
        3,
        "ConnectionRefusedError: SMTP server at 127.0.0.1:9 refused the connection",
    )
    assert "FAILED after 3 attempts" in caplog.text


def test_backoff_doubles_is_capped_and_jittered():
    retry = Retry(first=timedelta(seconds=2), cap=timedelta(seconds=60))
    delays = [retry.delay(n).total_seconds() for n in range(1, 9)]
    ceilings = [2, 4, 8, 16, 32, 60, 60, 60]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len({retry.delay(3) for _ in range(20)}) > 1


def test_a_job_waits_for_the_job_it_depends_on(database, clock):
    first_app, second_app = applications_for(database, 2)
    first = record(database, clock, "first", first_app)
    record(database, clock, "second", second_app, depends_on=first)
    order = []
    runner = Runner(
        database,
        {
            "first": lambda j: order.append("first") or Done(),
            "second": lambda j: order.append("second") or Done(),
        },
        clock,
    )
    with database.transaction() as connection:  # make the dependent one look due first
        connection.execute(
            jobs.update()
            .where(jobs.c.kind == "second")
            .values(run_after=clock() - timedelta(hours=1))
        )
    runner.run_due()
    assert order == ["first", "second"]


def test_a_job_that_started_something_outside_rechecks_its_condition_later(database, clock):
    (app,) = applications_for(database, 1)
    job_id, conditions = record(database, clock, "create_vpc", app), []

    def create_vpc(job):
        conditions.append(job.condition)
        return (
            Done()
            if job.condition
            else Wait({"vpc": "vpc-123", "state": "creating"}, timedelta(seconds=30))
        )

    runner = Runner(database, {"create_vpc": create_vpc}, clock)
    assert runner.run_due() == 1 and status(database, job_id)[0] == "waiting"
    clock.advance(31)
    assert runner.run_due() == 1
    assert conditions == [None, {"vpc": "vpc-123", "state": "creating"}]
    assert status(database, job_id)[:2] == (
        "succeeded",
        1,
    )  # waiting is not a failed attempt


def test_a_job_whose_runner_vanished_is_taken_again_after_its_lease(database, clock):
    (app,) = applications_for(database, 1)
    job_id = record(database, clock, "work", app)
    lost = queue.claim(database.transaction, "vanished", clock(), timedelta(minutes=5))
    assert queue.claim(database.transaction, "other", clock(), timedelta(minutes=5)) is None
    clock.advance(301)
    assert Runner(database, {"work": lambda job: Done()}, clock).run_due() == 1
    with database.transaction() as connection:
        assert not queue.finish(
            connection, lost, clock()
        )  # the vanished runner's late word is ignored
    assert status(database, job_id)[:2] == ("succeeded", 2)


@pytest.mark.mariadb
def test_four_runners_run_each_of_three_hundred_jobs_exactly_once(database_url, database, clock):
    if not database_url.startswith("mysql"):
        pytest.skip("the concurrency this checks is MariaDB's")
    for app in applications_for(database, 300):
        record(database, clock, "count", app)
    runs, lock = Counter(), threading.Lock()

    def count(job):
        with lock:
            runs[job.id] += 1
        return Done()

    databases = [Database(database_url) for _ in range(4)]
    runners = [
        Runner(db, {"count": count}, clock, name=f"runner-{n}") for n, db in enumerate(databases)
    ]
    threads = [threading.Thread(target=runner.run_due) for runner in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for db in databases:
        db.dispose()
    assert len(runs) == 300 and set(runs.values()) == {1}


@pytest.mark.mariadb
def test_a_runner_killed_mid_job_leaves_it_to_another(database_url, database, clock):
    if not database_url.startswith("mysql"):
        pytest.skip("one process per runner on MariaDB, as on Function Compute")
    (app,) = applications_for(database, 1)
    with database.transaction() as connection:
        job_id = queue.enqueue(
            connection, "slow", app, datetime.now(timezone.utc) - timedelta(seconds=1)
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
    assert Runner(database, {"slow": lambda job: Done()}, clock, name="survivor").run_due() == 1
    assert status(database, job_id)[:2] == ("succeeded", 2)


def test_due_now_revives_a_failed_job_and_leaves_a_running_one_to_its_runner(database, clock):
    failed_app, running_app, missing_app = applications_for(database, 3)
    failed = record(database, clock, "work", failed_app, retry=Retry(max_attempts=1))
    Runner(database, {"work": lambda job: 1 / 0}, clock).run_due()
    running = record(database, clock, "work", running_app)
    queue.claim(database.transaction, "busy", clock(), timedelta(minutes=5), only=running)
    with database.transaction() as connection:
        assert queue.due_now(connection, "work", failed_app, clock()) == failed
        assert queue.due_now(connection, "work", running_app, clock()) is None
        assert queue.due_now(connection, "work", missing_app, clock()) is not None  # recorded now
    assert status(database, failed)[:2] == ("queued", 0)
    assert status(database, running)[0] == "running"
