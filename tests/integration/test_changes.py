"""Changes: planned into steps with dependencies, taken in once per request id, run by the
runner through plugins (fakes of our own boundary here), failed and cleaned up as a whole.

On SQLite and MariaDB. The same flows through the official SDKs against the cloud sandbox
are in test_changes_cloud.py.
"""

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from backend.changes.cleanup import cleanup
from backend.changes.context import ChangeContext
from backend.changes.errors import CleanupRefused
from backend.changes.service import Changes
from backend.changes.steps import STEP_RETRY
from backend.changes.types import change_types
from backend.exceptions import Conflict, NotFound, ValidationError
from backend.jobs import queue
from backend.jobs.model import JobStatus
from backend.storage import changes as store
from backend.storage.schema import api_apps, jobs
from backend.work import runner, services
from tests.integration.conftest import meanwhile
from tests.integration.fake_cloud import FakeCloud, fake_plugins

NEW_NETWORK = {
    "type": "ecs.instance",
    "request_id": "ITSM-0001",
    "spec": {
        "vpc": "new",
        "zone_id": "cn-hangzhou-h",
        "image_id": "ubuntu_22_04_x64",
        "instance_type": "ecs.g7.large",
        "name": "web-1",
    },
}


@pytest.fixture
def fake() -> FakeCloud:
    return FakeCloud()


@pytest.fixture
def context(fake) -> ChangeContext:
    return ChangeContext(
        fake_plugins(fake),
        cloud=None,  # type: ignore[arg-type] -- the fakes call no cloud
        ready_timeout=timedelta(minutes=5),
    )


@pytest.fixture
def changes(database, clock, context) -> Changes:
    return Changes(database, change_types(context.plugins), context.plugins, clock)


@pytest.fixture
def apps(database, clock) -> tuple[int, int]:
    """Two callers' app ids."""
    with database.transaction() as connection:
        ids = [
            connection.execute(
                insert(api_apps).values(
                    app_key=f"20375338{n}", secret="s" * 32, name=f"itsm-{n}", created_at=clock()
                )
            ).inserted_primary_key[0]
            for n in (1, 2)
        ]
    return ids[0], ids[1]


@pytest.fixture
def step_runner(config, database, clock, context):
    return runner(config, replace(services(config, database, {}, None, clock), changes=context))


@pytest.fixture
def patient_runner(config, database, clock, context):
    """A runner whose steps wait two hours for their resources."""
    patient = replace(context, ready_timeout=timedelta(hours=2))
    return runner(config, replace(services(config, database, {}, None, clock), changes=patient))


def statuses(change) -> dict[str, str]:
    return {step.name: step.status for step in change.steps}


def test_a_new_network_instance_is_planned_vpc_then_vswitch_and_group_then_instance(
    changes, apps, database
):
    change = changes.submit(apps[0], NEW_NETWORK).change

    assert change.status == "planned"
    assert [(s.name, s.type, s.needs) for s in change.steps] == [
        ("vpc", "vpc", []),
        ("vswitch", "vswitch", ["vpc"]),
        ("security_group", "ecs.security_group", ["vpc"]),
        ("instance", "ecs.instance", ["vswitch", "security_group"]),
    ]
    with database.transaction() as connection:
        waits_for = queue.dependencies(connection, change.steps[3].job_id)
    assert waits_for == sorted([change.steps[1].job_id, change.steps[2].job_id])


def test_planned_steps_carry_their_defaults(changes, apps):
    change = changes.submit(apps[0], NEW_NETWORK).change

    assert change.steps[0].spec == {"cidr_block": "10.0.0.0/16", "name": "web-1-vpc"}
    assert change.steps[3].spec["system_disk_size"] == 40


def test_the_same_request_id_and_body_return_the_same_change(changes, apps, database):
    first = changes.submit(apps[0], NEW_NETWORK)
    again = changes.submit(apps[0], dict(NEW_NETWORK))

    assert (first.replayed, again.replayed) == (False, True)
    assert again.change.public_id == first.change.public_id
    with database.transaction() as connection:
        assert len(connection.execute(select(jobs.c.id)).all()) == 4


def test_the_same_request_id_with_another_body_is_a_conflict(changes, apps):
    changes.submit(apps[0], NEW_NETWORK)
    other = {**NEW_NETWORK, "spec": {**NEW_NETWORK["spec"], "name": "web-2"}}

    with pytest.raises(Conflict, match="ITSM-0001 was used for a different request"):
        changes.submit(apps[0], other)


def test_two_callers_may_use_the_same_request_id(changes, apps):
    first = changes.submit(apps[0], NEW_NETWORK).change
    second = changes.submit(apps[1], NEW_NETWORK).change

    assert first.public_id != second.public_id


def test_a_caller_cannot_see_another_callers_change(changes, apps):
    change = changes.submit(apps[0], NEW_NETWORK).change

    with pytest.raises(NotFound):
        changes.get(apps[1], change.public_id)


def test_an_unknown_type_lists_the_known_ones(changes, apps):
    with pytest.raises(ValidationError) as refused:
        changes.submit(apps[0], {**NEW_NETWORK, "type": "oss.bucket"})

    assert (
        "ecs.instance, ecs.security_group, ram.user, vpc, vswitch"
        in (refused.value.fields["type"]["en"])
    )


def test_each_wrong_field_gets_its_own_message(changes, apps):
    spec = {"image_id": 7, "system_disk_size": 5000, "colour": "blue", "vpc": "new"}

    with pytest.raises(ValidationError) as refused:
        changes.submit(apps[0], {**NEW_NETWORK, "spec": spec})

    fields = refused.value.fields
    assert set(fields) == {
        "spec.image_id",
        "spec.instance_type",
        "spec.system_disk_size",
        "spec.colour",
    }
    assert fields["spec.image_id"]["en"] == "Must be a string."
    assert "20 – 500" in fields["spec.system_disk_size"]["en"]
    assert "Unknown parameter" in fields["spec.colour"]["en"]


def test_an_instance_in_an_existing_network_needs_its_vswitch_and_group(changes, apps):
    spec = {"image_id": "img", "instance_type": "ecs.t6"}

    with pytest.raises(ValidationError) as refused:
        changes.submit(apps[0], {**NEW_NETWORK, "spec": spec})

    assert set(refused.value.fields) == {"spec.vswitch_id", "spec.security_group_id"}


def test_a_request_without_its_own_id_is_refused(changes, apps):
    with pytest.raises(ValidationError) as refused:
        changes.submit(apps[0], {"type": "vpc", "spec": {}})

    assert set(refused.value.fields) == {"request_id"}


def test_steps_run_in_order_and_each_asynchronous_wait_is_honoured(
    changes, apps, step_runner, clock, fake
):
    change = changes.submit(apps[0], NEW_NETWORK).change
    seen = []
    for _ in range(12):
        step_runner.run_due()
        seen.append(statuses(changes.get(apps[0], change.public_id)))
        clock.advance(2)

    assert seen[0] == {
        "vpc": "waiting",
        "vswitch": "planned",
        "security_group": "planned",
        "instance": "planned",
    }
    # Nothing that needs the VPC starts before it is Available.
    assert all(s["vswitch"] == "planned" for s in seen if s["vpc"] != "succeeded")
    assert all(s["instance"] == "planned" for s in seen if s["vswitch"] != "succeeded")
    done = changes.get(apps[0], change.public_id)
    assert done.status == "succeeded"
    assert done.view()["results"]["instance"]["instance_id"] == "instance-4"
    assert done.view()["results"]["instance"]["private_ip"] == "10.0.0.7"
    assert fake.resources["instance-4"].inputs == {
        "vswitch_id": "vswitch-2",
        "security_group_id": "security_group-3",
    }


def test_a_waiting_step_leaves_the_runner_free_until_its_check_is_due(
    changes, apps, step_runner, clock, database
):
    changes.submit(apps[0], {"type": "vpc", "request_id": "r1", "spec": {}})

    assert step_runner.run_due() == 1  # the create; then the job waits, holding nothing
    assert step_runner.run_due() == 0
    with database.transaction() as connection:
        assert queue.next_due(connection, clock()) == clock() + timedelta(seconds=1)


def test_a_permanent_error_fails_the_change_and_cancels_its_dependants(
    changes, apps, step_runner, clock, fake, database
):
    fake.refuse["vswitch"] = "InvalidCidrBlock.Malformed"
    change = changes.submit(apps[0], NEW_NETWORK).change
    for _ in range(6):
        step_runner.run_due()
        clock.advance(2)

    failed = changes.get(apps[0], change.public_id)
    assert failed.status == "failed"
    assert "InvalidCidrBlock.Malformed" in failed.error
    # The group, which does not need the vSwitch, is not started either: the change failed.
    assert statuses(failed) == {
        "vpc": "succeeded",
        "vswitch": "failed",
        "security_group": "cancelled",
        "instance": "cancelled",
    }
    with database.transaction() as connection:
        instance_job = connection.execute(
            select(jobs.c.status).where(jobs.c.id == failed.steps[3].job_id)
        ).scalar()
    assert instance_job == JobStatus.CANCELLED
    assert [(r["step"], r["id"], r["exists"]) for r in failed.resources()] == [
        ("vpc", "vpc-1", True)
    ]


def test_a_step_run_again_gets_the_resource_its_first_run_made(
    changes, apps, step_runner, clock, fake, database
):
    change = changes.submit(apps[0], {"type": "vpc", "request_id": "r1", "spec": {}}).change
    step_runner.run_due()
    # As if the runner died after the create call, before recording the resource's id.
    with database.transaction() as connection:
        from backend.storage import changes as store

        store.set_step(connection, change.steps[0].id, resource_id=None)
        connection.execute(
            jobs.update().where(jobs.c.id == change.steps[0].job_id).values(status="queued")
        )
    for _ in range(4):
        step_runner.run_due()
        clock.advance(2)

    assert fake.creates == 1
    assert changes.get(apps[0], change.public_id).steps[0].resource_id == "vpc-1"


def closed_by_another_run(database, step_id: int, status: str):  # type: ignore[no-untyped-def]
    """What the run that took a job over does while this one, past its lease, waits on the cloud."""

    def close() -> None:
        with database.transaction() as connection:
            store.set_step(connection, step_id, status=status)

    return close


@pytest.mark.parametrize("closed_as", ["succeeded", "failed"])
def test_a_create_answered_after_the_step_was_closed_leaves_it_closed(
    changes, apps, step_runner, fake, database, closed_as
):
    change = changes.submit(apps[0], {"type": "vpc", "request_id": "r1", "spec": {}}).change
    fake.meanwhile.append(closed_by_another_run(database, change.steps[0].id, closed_as))
    step_runner.run_due()  # the create: the vpc is pending

    step = changes.get(apps[0], change.public_id).steps[0]
    assert (step.status, step.resource_id) == (closed_as, "vpc-1")  # what was made is known


def test_a_run_that_read_the_step_before_it_was_closed_leaves_it_closed(
    changes, apps, step_runner, database, fake
):
    if database.engine.dialect.name != "mysql":
        pytest.skip("SQLite's write lock is taken at BEGIN: no other run writes inside this one")
    change = changes.submit(apps[0], {"type": "vpc", "request_id": "r1", "spec": {}}).change
    close = closed_by_another_run(database, change.steps[0].id, "failed")

    def starting(sql: str) -> bool:  # between this run's read of the step and its start of it
        return sql.startswith("UPDATE change_steps") and "started_at" in sql

    with meanwhile(database.engine, starting, close, before=True) as closed:
        step_runner.run_due()

    assert closed and changes.get(apps[0], change.public_id).steps[0].status == "failed"
    assert fake.existing() == []  # and nothing was made for it


@pytest.mark.parametrize("ready", [False, True])
def test_a_check_answered_after_the_step_failed_leaves_it_failed(
    changes, apps, step_runner, clock, fake, database, ready
):
    fake.pending_checks = 0 if ready else 1
    change = changes.submit(apps[0], {"type": "vpc", "request_id": "r1", "spec": {}}).change
    step_runner.run_due()  # the create: the vpc is pending
    fake.meanwhile.append(closed_by_another_run(database, change.steps[0].id, "failed"))
    clock.advance(2)
    step_runner.run_due()  # the check finds it still pending, or ready

    assert changes.get(apps[0], change.public_id).steps[0].status == "failed"


def test_a_resource_never_ready_fails_its_step_after_the_timeout(
    changes, apps, step_runner, clock, fake
):
    fake.pending_checks = 10_000
    change = changes.submit(apps[0], {"type": "vpc", "request_id": "r1", "spec": {}}).change
    for _ in range(40):
        step_runner.run_due()
        clock.advance(30)

    failed = changes.get(apps[0], change.public_id)
    assert failed.status == "failed"
    assert "still not ready" in failed.steps[0].last_error


def test_cleanup_deletes_what_a_failed_change_made_newest_first(
    changes, apps, step_runner, clock, fake, database, context
):
    fake.refuse["ecs.instance"] = "InvalidImageId.NotFound"
    change = changes.submit(apps[0], NEW_NETWORK).change
    for _ in range(8):
        step_runner.run_due()
        clock.advance(2)

    deleted = cleanup(database, context, change.public_id, clock)

    assert [s.name for s in deleted] == ["security_group", "vswitch", "vpc"]
    assert fake.existing() == []
    after = changes.get(apps[0], change.public_id)
    assert all(not r["exists"] for r in after.resources())


def test_cleanup_refuses_a_change_that_is_still_running(
    changes, apps, step_runner, database, context, clock
):
    change = changes.submit(apps[0], NEW_NETWORK).change
    step_runner.run_due()

    with pytest.raises(CleanupRefused, match="is running"):
        cleanup(database, context, change.public_id, clock)


def test_the_pace_of_checks_and_retries_stops_growing_at_its_cap(context):
    assert context.check_in(1000) == context.check_cap
    assert STEP_RETRY.delay(1000) <= STEP_RETRY.cap


def test_a_resource_pending_for_long_is_checked_until_the_ready_timeout(
    changes, apps, patient_runner, clock, fake
):
    jobs = patient_runner
    fake.pending_checks = 10_000
    change = changes.submit(apps[0], {"type": "vpc", "request_id": "r1", "spec": {}}).change
    for _ in range(150):  # a check every 60 s at most: past the 47th, where 2**n overflowed
        jobs.run_due()
        clock.advance(60)

    failed = changes.get(apps[0], change.public_id)
    assert "still not ready after 2:" in failed.steps[0].last_error


def test_throttling_long_after_a_step_was_recorded_is_still_retried(
    changes, apps, patient_runner, clock, fake
):
    step_runner = patient_runner
    fake.pending_checks = 45
    change = changes.submit(apps[0], {"type": "vpc", "request_id": "r1", "spec": {}}).change
    for _ in range(40):  # 20 minutes of checks: past the 15 minutes of retrying
        step_runner.run_due()
        clock.advance(30)
    assert changes.get(apps[0], change.public_id).steps[0].status == "waiting"
    fake.throttled_checks = 1
    for _ in range(20):
        step_runner.run_due()
        clock.advance(30)

    assert changes.get(apps[0], change.public_id).status == "succeeded"


def test_a_sibling_whose_create_went_unanswered_is_reported_and_cleaned_up(
    changes, apps, step_runner, clock, fake, database, context
):
    # The group's create is made but unanswered; then the vSwitch breaks, failing the change.
    fake.lose_answer.add("ecs.security_group")
    fake.refuse_checks["vswitch"] = "InternalError.Broken"
    change = changes.submit(apps[0], NEW_NETWORK).change
    for _ in range(8):
        step_runner.run_due()
        clock.advance(5)

    failed = changes.get(apps[0], change.public_id)
    assert failed.status == "failed"
    assert {r["step"] for r in failed.resources()} == {"vpc", "vswitch", "security_group"}
    cleanup(database, context, change.public_id, clock)
    assert fake.existing() == []


def test_cleanup_names_a_resource_whose_create_went_unanswered_before_deleting(
    changes, apps, step_runner, clock, fake, database, context
):
    fake.refuse_checks["vswitch"] = "InternalError.Broken"
    fake.lose_answer.add("ecs.security_group")
    change = changes.submit(apps[0], NEW_NETWORK).change
    for _ in range(3):  # the VPC, then the vSwitch made and the group's create unanswered
        step_runner.run_due()
        clock.advance(5)
    step_runner.run_due()  # the vSwitch's check fails its change; the group waits its retry

    cleanup(database, context, change.public_id, clock)

    assert fake.existing() == []
    after = changes.get(apps[0], change.public_id)
    assert all(s.status in ("succeeded", "failed", "cancelled") for s in after.steps)


def test_running_a_failed_steps_job_again_keeps_its_change_failed_and_says_why(
    changes, apps, step_runner, clock, fake, database
):
    fake.refuse["vpc"] = "QuotaExceeded.Vpc"
    change = changes.submit(apps[0], {"type": "vpc", "request_id": "r1", "spec": {}}).change
    step_runner.run_due()
    with database.transaction() as connection:
        assert queue.requeue(connection, change.steps[0].job_id, clock())
    step_runner.run_due()

    with database.transaction() as connection:
        job = connection.execute(
            select(jobs.c.status, jobs.c.last_error).where(jobs.c.id == change.steps[0].job_id)
        ).one()
    assert job.status == JobStatus.FAILED and "is not resumed" in job.last_error
    after = changes.get(apps[0], change.public_id)
    assert after.status == "failed" and "QuotaExceeded.Vpc" in after.steps[0].last_error
