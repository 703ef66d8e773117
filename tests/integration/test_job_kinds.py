"""A new kind of work is a module and one registration: the runner runs it unchanged.

The kinds below live in this test module, as a plugin's would live in its own; they go
through the project's registry and runner, on SQLite and MariaDB.
"""

import pytest

from backend.exceptions import RetryCannotHelp
from backend.jobs import queue
from backend.jobs.model import Done, Job, JobStatus
from backend.jobs.registry import JobKind, Registry
from backend.services import Services
from backend.subjects import Subject, SubjectType
from backend.work import job_kinds, runner, services

CHANGE = Subject(SubjectType.CHANGE, "7")
kinds: Registry[Services] = Registry()
ran: list[tuple[str, str]] = []


@kinds.kind("open_resource")
def open_resource(services: Services, job: Job) -> Done:
    """Stands in for a plugin that opens one cloud resource of a change."""
    ran.append((job.kind, job.payload["resource"]))
    return Done()


@kinds.kind("report_change")
def report_change(services: Services, job: Job) -> Done:
    """Stands in for the report that follows once every resource is open."""
    ran.append((job.kind, str(job.subject)))
    return Done()


@kinds.kind("check_setting")
def check_setting(services: Services, job: Job) -> Done:
    """Stands in for a job that a wrong setting fails, and one that a passing fault fails."""
    if job.payload["fault"] == "setting":
        raise RetryCannotHelp("the robot's secret is wrong: fix ROBOT_SECRET")
    raise ConnectionError("the robot did not answer")


@pytest.fixture
def change_runner(config, database, clock):
    """The project's runner, with this module's kinds registered beside the project's."""
    registry = job_kinds()
    registry.include(kinds)
    ran.clear()
    return runner(config, services(config, database, {}, None, clock), registry)


def test_a_kind_registered_by_another_module_runs_through_the_runner(
    change_runner, database, clock
):
    with database.transaction() as connection:
        vpc = resource(connection, clock, "vpc")
        vswitch = resource(connection, clock, "vswitch")
        report = queue.enqueue(
            connection, "report_change", CHANGE, clock(), depends_on=[vpc, vswitch]
        )
        assert queue.dependencies(connection, report) == sorted([vpc, vswitch])
    assert change_runner.run_due() == 3
    assert ran[-1] == ("report_change", "change 7")
    assert sorted(ran[:2]) == [("open_resource", "vpc"), ("open_resource", "vswitch")]


def test_the_same_work_recorded_twice_is_refused_by_its_dedupe_key(change_runner, database, clock):
    with database.transaction() as connection:
        first = resource(connection, clock, "vpc")
        again = resource(connection, clock, "vpc")
        other = resource(connection, clock, "vswitch")
    assert first is not None and again is None and other is not None
    assert change_runner.run_due() == 2


def test_a_job_depending_on_two_runs_only_once_both_have_succeeded(change_runner, database, clock):
    with database.transaction() as connection:
        vpc = resource(connection, clock, "vpc")
        vswitch = resource(connection, clock, "vswitch")
        depends_on = [vpc, vswitch]
        report = queue.enqueue(connection, "report_change", CHANGE, clock(), depends_on=depends_on)
    assert change_runner.run_one(only=vpc)
    assert not change_runner.run_one(only=report)  # the vswitch is not open yet
    assert change_runner.run_one(only=vswitch)
    assert change_runner.run_one(only=report)
    assert ran[-1] == ("report_change", "change 7")


def test_a_dependent_waits_while_its_prerequisite_runs(change_runner, database, clock):
    with database.transaction() as connection:
        vpc = resource(connection, clock, "vpc")
        report = queue.enqueue(connection, "report_change", CHANGE, clock(), depends_on=[vpc])
    queue.claim(database.transaction, "busy", clock(), change_runner.lease, only=vpc)
    assert change_runner.run_one(only=report) is False
    assert ran == []


def test_two_handlers_for_one_kind_are_refused():
    registry = job_kinds()
    with pytest.raises(ValueError, match="two handlers for jobs of kind 'issue_license'"):
        registry.add(JobKind("issue_license", open_resource))


def resource(connection, clock, name: str) -> int | None:
    """Record the job that opens one resource of change 7: several of one kind per subject."""
    return queue.enqueue(
        connection, "open_resource", CHANGE, clock(), part=name, payload={"resource": name}
    )


@pytest.mark.parametrize(
    ("fault", "status"), [("setting", JobStatus.FAILED), ("outage", JobStatus.QUEUED)]
)
def test_a_job_that_retrying_cannot_mend_fails_at_its_first_run(
    change_runner, database, clock, fault, status
):
    with database.transaction() as connection:
        queue.enqueue(connection, "check_setting", CHANGE, clock(), payload={"fault": fault})
    change_runner.run_due()
    with database.transaction() as connection:
        (job,) = queue.listing(connection)
    assert (job.status, job.attempts) == (status, 1)
