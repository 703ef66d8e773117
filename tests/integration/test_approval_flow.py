"""From a stored application to a decision, against the sandbox: open, decide, deliver, recover."""

import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import Engine, update
from sqlalchemy.exc import OperationalError

from approval.app import create_app as create_approval
from backend.app import create_app
from backend.approvals.dispatcher import Dispatcher
from backend.approvals.reconciler import Reconciler
from backend.approvals.wiring import dingtalk_client
from backend.config import Config
from backend.fulfillment.names import OPEN_INSTANCE
from backend.storage.applications import by_token
from backend.storage.schema import jobs
from backend.work import standalone_runner
from cli.context import script_info
from cli.main import cli
from sandbox.delivery import RETRY_DELAYS, CallbackTarget
from tests.conftest import wait_for
from tests.integration.conftest import (
    CATALOGUE,
    LiveServer,
    SignedClient,
    a_form,
    faults,
    meanwhile,
)

RETRY_SCALE = 0.05
"""DingTalk's retries come 10 s and 30 s after a failed push; here 0.5 s and 1.5 s."""


def status_of(api, token: str) -> str:
    return api.get(f"/applications/{token}").get_json()["status"]


def decision_jobs(database) -> list[str]:
    """The kinds of work the approval decisions recorded."""
    query = "select kind from jobs where kind <> 'open_instance' order by id"
    with database.transaction() as connection:
        return list(connection.exec_driver_sql(query).scalars())


def test_submitting_opens_an_approval_with_the_mapped_form(approving_api, sandbox):
    answer = approving_api.post("/applications", a_form()).get_json()
    assert answer["status"] == "submitted"  # answered once stored; the runner opens it
    assert approving_api.get(f"/applications/{answer['token']}").get_json()["status"] == "pending"
    (instance,) = sandbox.state.instances.values()
    assert instance.dept_id == -1  # DingTalk needs the department: by default the root
    form = {value["name"]: value["value"] for value in instance.form}
    assert form["申请编号"] == answer["number"] and form["公司名称"] == "杭州示例网络科技有限公司"
    assert (
        form["产品"] == "Acme ERP 企业版 (acme-erp)"
        and form["有效期"] == "1 年"
        and form["数量"] == "5"
    )


def test_dingtalk_rate_limiting_at_intake_keeps_the_application_for_a_retry(
    approving_api, sandbox, dingtalk_config, database, clock
):
    faults(sandbox, rate_limit=1, rate_limit_api="start")  # DingTalk throttles the start itself
    answer = approving_api.post("/applications", a_form())
    assert answer.status_code == 201 and answer.get_json()["status"] == "submitted"
    assert sandbox.state.answers("token") == [200] and sandbox.state.answers("start") == [403]
    runner = standalone_runner(dingtalk_config, clock)
    clock.advance(10)  # past the job's backoff
    assert runner.run_due() == 1
    clock.advance(600)
    assert runner.run_due() == 0  # done: nothing is opened twice
    assert status_of(approving_api, answer.get_json()["token"]) == "pending"
    assert sandbox.state.answers("start") == [403, 200] and len(sandbox.state.instances) == 1


@pytest.fixture
def callback_server(dingtalk_config, database, sandbox):
    """The approval function live, with the sandbox pushing events to it."""
    app = create_approval(dingtalk_config, clock=lambda: datetime.now(timezone.utc))
    server = LiveServer(app)
    sandbox.deliverer.target = CallbackTarget(
        f"{server.url}/dingtalk/callback",
        "dingpass2026tok",
        dingtalk_config.dingtalk_callback_aes_key,
        dingtalk_config.dingtalk_app_key,
    )
    yield server
    server.stop()
    app.extensions["database"].dispose()


def decide(sandbox, action: str) -> str:
    (instance,) = sandbox.state.instances.values()
    sandbox.deliverer.publish(sandbox.state.decide(instance.id, action))
    return instance.id


def press(sandbox, action: str) -> str:
    """Press a button of the sandbox's approver console on the one instance; its id."""
    (instance,) = sandbox.state.instances.values()
    answer = requests.post(
        f"{sandbox.url}/console/{instance.id}/{action}",
        headers={"Accept": "application/json"},
        timeout=5,
    )
    answer.raise_for_status()
    return instance.id


def test_approving_in_dingtalk_approves_the_application(approving_api, sandbox, callback_server):
    token = approving_api.post("/applications", a_form()).get_json()["token"]
    decide(sandbox, "approve")
    assert wait_for(lambda: status_of(approving_api, token) == "approved")


def test_terminate_in_the_console_terminates_the_application_and_records_its_mail(
    approving_api, sandbox, callback_server, database
):
    token = approving_api.post("/applications", a_form()).get_json()["token"]
    instance_id = press(sandbox, "terminate")
    assert wait_for(lambda: status_of(approving_api, token) == "terminated")
    # The sandbox records a push once its answer is read, which may be after the status moved.
    assert wait_for(lambda: sandbox.state.pushes_of(instance_id))
    (push,) = sandbox.state.pushes_of(instance_id)
    assert push.success and decision_jobs(database) == ["send_refusal_mail"]


def test_a_duplicated_push_moves_the_application_once(
    approving_api, sandbox, callback_server, database
):
    token = approving_api.post("/applications", a_form()).get_json()["token"]
    faults(sandbox, duplicate_events=1)
    instance_id = decide(sandbox, "refuse")
    assert wait_for(lambda: status_of(approving_api, token) == "refused")
    # Both pushes answered, and both with encrypted success: the second is a no-op, not an error.
    assert wait_for(lambda: len(sandbox.state.pushes_of(instance_id)) == 2)
    assert [push.success for push in sandbox.state.pushes_of(instance_id)] == [True, True]
    with database.transaction() as connection:
        assert connection.exec_driver_sql("select count(*) from approval_events").scalar() == 1
    assert decision_jobs(database) == ["send_refusal_mail"]


def retries_scaled(sandbox) -> tuple[float, float]:
    sandbox.deliverer.retry_delays = tuple(d * RETRY_SCALE for d in RETRY_DELAYS)
    return sandbox.deliverer.retry_delays


def test_a_push_the_callback_could_not_take_comes_again_after_the_first_delay(
    approving_api, sandbox, callback_server, database
):
    first_delay, _ = retries_scaled(sandbox)
    token = approving_api.post("/applications", a_form()).get_json()["token"]
    faults(sandbox, callback_unavailable=1)  # the function's front door answers 503 once
    instance_id = decide(sandbox, "approve")
    assert wait_for(lambda: status_of(approving_api, token) == "approved")
    # The retry is recorded once its answer is in, which may be just after the approval lands.
    assert wait_for(lambda: len(sandbox.state.pushes_of(instance_id)) == 2)
    failed, retry = sandbox.state.pushes_of(instance_id)
    assert (failed.status, failed.success, retry.status, retry.success) == (503, False, 200, True)
    assert retry.at - failed.at >= first_delay
    # The same event, in a new request: signed again with its own timestamp and nonce.
    assert retry.event_id == failed.event_id and retry.nonce != failed.nonce
    assert decision_jobs(database) == ["issue_license"]


def test_a_push_refused_twice_comes_again_after_the_second_delay(
    approving_api, sandbox, callback_server, database
):
    first_delay, second_delay = retries_scaled(sandbox)
    token = approving_api.post("/applications", a_form()).get_json()["token"]
    faults(sandbox, callback_unavailable=2)
    instance_id = decide(sandbox, "approve")
    assert wait_for(lambda: len(sandbox.state.pushes_of(instance_id)) == 3)
    first, second, third = sandbox.state.pushes_of(instance_id)
    assert [push.status for push in (first, second, third)] == [503, 503, 200] and third.success
    assert second.at - first.at >= first_delay and third.at - second.at >= second_delay
    assert status_of(approving_api, token) == "approved"
    assert decision_jobs(database) == ["issue_license"]


def test_a_push_refused_three_times_is_on_the_failed_list_until_reconcile_takes_it(
    approving_api, sandbox, callback_server, dingtalk_config, database, clock
):
    retries_scaled(sandbox)
    token = approving_api.post("/applications", a_form()).get_json()["token"]
    faults(sandbox, callback_unavailable=3)
    instance_id = decide(sandbox, "approve")
    assert wait_for(lambda: len(sandbox.state.failed_events) == 1)
    assert [push.status for push in sandbox.state.pushes_of(instance_id)] == [503, 503, 503]
    assert status_of(approving_api, token) == "pending"
    report = reconciler(dingtalk_config, database, clock, after=3600).run()
    assert report.drained == 1 and status_of(approving_api, token) == "approved"
    assert decision_jobs(database) == ["issue_license"]


def test_a_retry_of_a_push_already_taken_is_answered_success_and_moves_nothing(
    approving_api, sandbox, callback_server, database
):
    first_delay, _ = retries_scaled(sandbox)
    token = approving_api.post("/applications", a_form()).get_json()["token"]
    faults(sandbox, callback_answer_lost=1)  # taken, but DingTalk never hears the answer
    instance_id = decide(sandbox, "approve")
    assert wait_for(lambda: len(sandbox.state.pushes_of(instance_id)) == 2, seconds=first_delay + 5)
    unanswered, retry = sandbox.state.pushes_of(instance_id)
    assert (unanswered.status, retry.status, retry.success) == (None, 200, True)
    assert retry.at - unanswered.at >= first_delay
    assert status_of(approving_api, token) == "approved"
    with database.transaction() as connection:
        assert connection.exec_driver_sql("select count(*) from approval_events").scalar() == 1
    assert decision_jobs(database) == ["issue_license"]


def reconciler(dingtalk_config, database, clock, after: float = 0) -> Reconciler:
    client = dingtalk_client(dingtalk_config, database, clock)
    return Reconciler(
        database, client, Dispatcher(database, clock), timedelta(seconds=after), clock
    )


def test_an_event_the_sandbox_dropped_is_recovered_by_reconcile(
    approving_api, sandbox, callback_server, dingtalk_config, database, clock
):
    token = approving_api.post("/applications", a_form()).get_json()["token"]
    faults(sandbox, drop_events=1)
    instance_id = decide(sandbox, "approve")
    time.sleep(0.3)
    assert status_of(approving_api, token) == "pending"
    clock.advance(1)
    report = reconciler(dingtalk_config, database, clock).run()
    assert report.recovered == [instance_id] and status_of(approving_api, token) == "approved"


def test_pushes_dingtalk_gave_up_on_are_drained_from_the_failed_list(
    approving_api, sandbox, dingtalk_config, database, clock
):
    token = approving_api.post("/applications", a_form()).get_json()["token"]
    sandbox.deliverer.target = CallbackTarget(
        "http://127.0.0.1:9/nowhere",
        "t",
        dingtalk_config.dingtalk_callback_aes_key,
        "k",
    )
    sandbox.deliverer.retry_delays = (0.01, 0.01)
    decide(sandbox, "approve")
    assert wait_for(lambda: len(sandbox.state.failed_events) == 1)
    report = reconciler(
        dingtalk_config, database, clock, after=3600
    ).run()  # too young to be checked
    assert report.drained == 1 and status_of(approving_api, token) == "approved"
    assert sandbox.state.failed_events == []


def test_an_instance_opened_though_dingtalk_answered_too_late_is_not_opened_twice(
    approving_api, sandbox, dingtalk_config, database, clock
):
    clock.now = datetime.now(timezone.utc)  # the search looks around the start on DingTalk's clock
    approving_api.post(
        "/applications", a_form(company="先行公司")
    )  # another instance, to look past
    dingtalk_client(dingtalk_config, database, clock).access_token()
    faults(
        sandbox, slow_seconds=3.5
    )  # longer than the client waits: it gives up, DingTalk carries on
    answer = approving_api.post("/applications", a_form(email="slow@example.com")).get_json()
    faults(sandbox, slow_seconds=0)
    assert answer["status"] == "submitted"
    assert wait_for(lambda: len(sandbox.state.instances) == 2)
    clock.advance(60)  # past the job's backoff, and past the time an unanswered attempt could take
    assert standalone_runner(dingtalk_config, clock).run_due() == 1
    assert len(sandbox.state.instances) == 2  # adopted, not opened again
    status = approving_api.get(f"/applications/{answer['token']}").get_json()
    assert status["status"] == "pending"


def cli_env(dingtalk_config) -> dict[str, str]:
    c = dingtalk_config
    return {
        "DATABASE_URL": c.database,
        "DINGTALK_APP_KEY": c.dingtalk_app_key,
        "DINGTALK_APP_SECRET": c.dingtalk_app_secret,
        "DINGTALK_PROCESS_CODE": c.dingtalk_process_code,
        "DINGTALK_ORIGINATOR_USER_ID": "manager01",
        "DINGTALK_API_BASE": c.dingtalk_api_base,
        "DINGTALK_OAPI_BASE": c.dingtalk_oapi_base,
        "RECONCILE_AFTER": "1",
    }


def reconcile_at(dingtalk_config, clock, after: int):
    """`dingpass reconcile` with RECONCILE_AFTER=``after``, on the test's clock."""
    env = {**cli_env(dingtalk_config), "RECONCILE_AFTER": str(after)}
    info = script_info(Config.from_env({"CATALOGUE_FILE": str(CATALOGUE), **env}))
    info.data["clock"] = clock
    return CliRunner().invoke(cli, ["reconcile"], obj=info)


def test_dingpass_reconcile_leaves_a_young_approval_alone_and_asks_about_an_old_one(
    approving_api, sandbox, dingtalk_config, clock
):
    token = approving_api.post("/applications", a_form()).get_json()["token"]  # pending now
    faults(sandbox, drop_events=1)
    instance_id = decide(sandbox, "approve")
    clock.advance(599)
    young = reconcile_at(dingtalk_config, clock, after=600)
    assert young.exit_code == 0, young.output
    assert sandbox.state.asked == [] and "Checked 0 pending approval(s)" in young.output
    assert status_of(approving_api, token) == "pending"
    clock.advance(2)
    old = reconcile_at(dingtalk_config, clock, after=600)
    assert old.exit_code == 0, old.output
    assert sandbox.state.asked == [instance_id] and f"recovered 1: {instance_id}" in old.output
    assert status_of(approving_api, token) == "approved"


def test_dingpass_approvals_retry_opens_what_intake_could_not(
    approving_api, sandbox, dingtalk_config, run_cli
):
    faults(sandbox, server_error=1)
    token = approving_api.post("/applications", a_form()).get_json()["token"]
    result = run_cli("approvals", "retry", env=cli_env(dingtalk_config))
    assert (
        result.exit_code == 0 and "Opened 1 approval instance(s); 0 still waiting." in result.output
    )
    assert status_of(approving_api, token) == "pending"


@pytest.mark.mariadb
def test_dingpass_approvals_retry_opens_an_application_a_runner_tried_meanwhile(
    snapshot_isolation, approving_api, sandbox, dingtalk_config, database, run_cli
):
    faults(sandbox, server_error=1)
    token = approving_api.post("/applications", a_form()).get_json()["token"]

    def attempted() -> None:  # the command has listed it: a runner's attempt comes meanwhile
        with database.transaction() as other:  # taken (a version), failed (another)
            attempt = update(jobs).where(jobs.c.kind == OPEN_INSTANCE)
            other.execute(attempt.values(attempts=2, version=jobs.c.version + 2))

    def listing(sql: str) -> bool:
        return sql.startswith("SELECT applications.id")

    with meanwhile(Engine, listing, attempted) as listed:
        result = run_cli("approvals", "retry", env=cli_env(dingtalk_config))
    assert listed and "Opened 1 approval instance(s); 0 still waiting." in result.output
    assert status_of(approving_api, token) == "pending"


def test_dingpass_reconcile_without_dingtalk_says_what_to_set(run_cli):
    result = run_cli("reconcile")
    assert (
        result.exit_code == 1
        and "DingTalk is not configured: set DINGTALK_APP_KEY" in result.output
    )


def test_a_start_that_never_left_is_not_taken_for_one_in_doubt(
    dingtalk_config, database, clock, monkeypatch
):
    app = create_app(dingtalk_config, clock=clock)

    def database_away() -> str:  # storing a new token: MySQL chose it as a deadlock victim
        raise OperationalError("INSERT INTO dingtalk_tokens", {}, Exception("1213"))

    monkeypatch.setattr(
        app.extensions["runner"]().context.opener.client, "access_token", database_away
    )
    token = SignedClient(app).post("/applications", a_form()).get_json()["token"]
    assert app.extensions["runner"]().run_due() == 1  # the job failed, to be retried
    with database.transaction() as connection:
        found = by_token(connection, token)
    assert found.instance_requested_at is None  # no start went out: the retry starts at once
