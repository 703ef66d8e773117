"""DingTalk answering a start after our client gave up: one instance, and no decision lost."""

import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine

from backend.approvals.dispatcher import Dispatcher, Outcome, held_instances, link
from backend.approvals.events import ApprovalEvent
from backend.approvals.reconciler import Reconciler
from backend.approvals.wiring import dingtalk_client
from backend.dingtalk.client import DingTalkClient
from backend.jobs import queue
from backend.storage.applications import by_token, mark_pending
from backend.work import standalone_runner
from tests.integration.conftest import (
    APP_KEY,
    APP_SECRET,
    PROCESS_CODE,
    a_form,
    faults,
    meanwhile,
)

LATE = 3.4  # seconds DingTalk takes over a start; the client waits 3


@pytest.fixture
def late_start(approving_api, sandbox, dingtalk_config, database, clock):
    """An application whose start DingTalk worked on after our client had given up."""
    clock.now = datetime.now(timezone.utc)  # the search looks around the start on DingTalk's clock
    dingtalk_client(dingtalk_config, database, clock).access_token()  # only the start is slow
    faults(sandbox, slow_start_seconds=LATE)
    answer = approving_api.post("/applications", a_form()).get_json()
    faults(sandbox, slow_start_seconds=0)
    assert answer["status"] == "submitted"
    deadline = time.monotonic() + 5
    while not sandbox.state.instances and time.monotonic() < deadline:
        time.sleep(0.05)
    (instance,) = sandbox.state.instances.values()
    return answer["token"], instance.id


def application(database, token):
    with database.transaction() as connection:
        return by_token(connection, token)


def test_a_retry_soon_after_a_start_in_doubt_does_not_start_again(
    late_start, sandbox, dingtalk_config, clock
):
    runner = standalone_runner(dingtalk_config, clock)
    for _ in range(3):  # the job's first retries come seconds later, as they did
        clock.advance(3)
        runner.run_due()
    assert len(sandbox.state.instances) == 1


def test_the_instance_a_start_in_doubt_opened_is_found_and_adopted(
    late_start, sandbox, dingtalk_config, database, clock
):
    token, instance_id = late_start
    clock.advance(31)  # the start has settled
    assert standalone_runner(dingtalk_config, clock).run_due() == 1
    assert len(sandbox.state.instances) == 1
    found = application(database, token)
    assert (found.status, found.instance_id) == ("pending", instance_id)


def test_a_decision_that_arrives_before_the_instance_is_known_is_applied(
    late_start, sandbox, dingtalk_config, database, clock
):
    token, instance_id = late_start
    approve = ApprovalEvent(instance_id, "finish", "agree", "http")
    assert Dispatcher(database, clock).dispatch(approve) is Outcome.UNKNOWN_INSTANCE
    clock.advance(3)
    standalone_runner(dingtalk_config, clock).run_due()  # the event's job adopts the instance
    assert application(database, token).status in ("approved", "issued", "delivered")
    assert len(sandbox.state.instances) == 1


def test_the_reconciler_applies_a_recorded_decision_that_was_never_acted_on(
    late_start, dingtalk_config, database, clock
):
    token, instance_id = late_start
    approve = ApprovalEvent(instance_id, "finish", "agree", "http")
    Dispatcher(database, clock).dispatch(approve)  # held: no application knows the instance
    found = application(database, token)
    with database.transaction() as connection:  # linked behind the dispatcher's back
        mark_pending(connection, found.id, instance_id, clock())
    client = dingtalk_client(dingtalk_config, database, clock)
    report = Reconciler(
        database, client, Dispatcher(database, clock), timedelta(hours=1), clock
    ).run()
    assert report.recovered == [instance_id]
    assert application(database, token).status == "approved"


def test_a_start_that_never_left_is_started_again_at_once(
    approving_api, sandbox, dingtalk_config, database, clock
):
    faults(sandbox, rate_limit=1, rate_limit_api="start")  # DingTalk said no: nothing opened
    token = approving_api.post("/applications", a_form()).get_json()["token"]
    assert application(database, token).instance_requested_at is None
    clock.advance(3)
    assert standalone_runner(dingtalk_config, clock).run_due() == 1
    assert application(database, token).status == "pending"
    assert len(sandbox.state.instances) == 1


def test_an_instance_started_by_someone_else_with_our_number_decides_nothing(
    late_start, sandbox, dingtalk_config, database, clock
):
    token, _ = late_start
    number = application(database, token).number
    forged = sandbox.state.start(
        PROCESS_CODE, "intruder", 1, [{"name": "申请编号", "value": number}]
    )
    approve = ApprovalEvent(forged.id, "finish", "agree", "http")
    assert Dispatcher(database, clock).dispatch(approve) is Outcome.UNKNOWN_INSTANCE
    clock.advance(3)
    standalone_runner(dingtalk_config, clock).run_due()
    found = application(database, token)
    assert found.status == "submitted" and found.instance_id is None
    with database.transaction() as connection:
        assert held_instances(connection) == []  # let go, not held for ever


def test_an_event_for_another_approval_form_is_not_held(database, clock):
    other_form = ApprovalEvent("pi-9", "finish", "agree", "http", {"processCode": "PROC-OTHER"})
    dispatcher = Dispatcher(database, clock, process_codes={PROCESS_CODE})
    assert dispatcher.dispatch(other_form) is Outcome.NOT_OURS
    with database.transaction() as connection:
        assert held_instances(connection) == [] and queue.listing(connection) == []


class StartEventFirst(DingTalkClient):
    """Our DingTalk client, with the instance's `start` event dispatched and adopted before the
    start call returns, as real DingTalk's push can overtake its answer."""

    adopt: object = None

    def start_instance(self, *args, **kwargs) -> str:
        instance_id = super().start_instance(*args, **kwargs)
        self.adopt(instance_id)
        return instance_id


def test_a_start_event_that_overtakes_the_answer_links_the_same_instance_once(
    approving_api, sandbox, dingtalk_config, database, clock, caplog
):
    clock.now = datetime.now(timezone.utc)
    faults(sandbox, rate_limit=1)  # intake leaves it to the runner, where the race is played
    token = approving_api.post("/applications", a_form()).get_json()["token"]
    runner = standalone_runner(dingtalk_config, clock)
    opener = runner.context.opener
    racing = StartEventFirst(sandbox.url, APP_KEY, APP_SECRET, database, clock)
    racing.adopt = lambda instance_id: (
        Dispatcher(database, clock).dispatch(ApprovalEvent(instance_id, "start", None, "http")),
        opener.adopt(instance_id),
    )
    opener.client = racing
    clock.advance(3)
    runner.run_due()
    assert application(database, token).status == "pending"
    assert len(sandbox.state.instances) == 1
    assert "second instance" not in caplog.text


@pytest.mark.mariadb
def test_a_start_answer_that_links_the_instance_during_its_adoption_is_no_second_instance(
    snapshot_isolation, approving_api, sandbox, dingtalk_config, database, clock, caplog
):
    faults(sandbox, rate_limit=1)  # intake leaves it to the runner
    token = approving_api.post("/applications", a_form()).get_json()["token"]
    found = application(database, token)
    number = [{"name": "申请编号", "value": found.number}]
    instance_id = sandbox.state.start(PROCESS_CODE, "manager01", 1, number).id
    Dispatcher(database, clock).dispatch(ApprovalEvent(instance_id, "start", None, "http"))
    opener = standalone_runner(dingtalk_config, clock).context.opener  # after snapshot_isolation

    def answered() -> None:  # the start's answer comes back to the open job, which links it
        with database.transaction() as other:
            assert link(other, found.id, instance_id, clock())

    with meanwhile(Engine, lambda sql: "WHERE applications.number =" in sql, answered) as done:
        opener.adopt(instance_id)

    assert done
    assert application(database, token).instance_id == instance_id
    assert "carries" not in caplog.text  # no "second instance" sent to a person
