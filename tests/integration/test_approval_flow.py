"""From a stored application to a decision, against the sandbox: open, decide, deliver, recover."""

import time
from datetime import datetime, timedelta, timezone

import pytest

from approval.app import create_app as create_approval
from backend.approvals.dispatcher import Dispatcher
from backend.approvals.reconciler import Reconciler
from backend.approvals.wiring import dingtalk_client
from backend.work import standalone_runner
from sandbox.delivery import CallbackTarget
from tests.integration.conftest import DECISION_JOBS, LiveServer, a_form, faults


def status_of(api, token: str) -> str:
    return api.get(f"/applications/{token}").get_json()["status"]


def wait_for(predicate, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_submitting_opens_an_approval_with_the_mapped_form(approving_api, sandbox):
    answer = approving_api.post("/applications", a_form()).get_json()
    assert answer["status"] == "pending"
    (instance,) = sandbox.state.instances.values()
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
    faults(sandbox, rate_limit=1)  # DingTalk refuses the intake attempt
    answer = approving_api.post("/applications", a_form())
    assert answer.status_code == 201 and answer.get_json()["status"] == "submitted"
    runner = standalone_runner(dingtalk_config, clock)
    clock.advance(10)  # past the job's backoff
    assert runner.run_due() == 1
    clock.advance(600)
    assert runner.run_due() == 0  # done: nothing is opened twice
    assert status_of(approving_api, answer.get_json()["token"]) == "pending"
    assert len(sandbox.state.instances) == 1


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


def test_approving_in_dingtalk_approves_the_application(approving_api, sandbox, callback_server):
    token = approving_api.post("/applications", a_form()).get_json()["token"]
    decide(sandbox, "approve")
    assert wait_for(lambda: status_of(approving_api, token) == "approved")


def test_a_duplicated_push_moves_the_application_once(
    approving_api, sandbox, callback_server, database
):
    token = approving_api.post("/applications", a_form()).get_json()["token"]
    faults(sandbox, duplicate_events=1)
    decide(sandbox, "refuse")
    assert wait_for(lambda: status_of(approving_api, token) == "refused")
    time.sleep(0.3)
    with database.transaction() as connection:
        assert connection.exec_driver_sql("select count(*) from approval_events").scalar() == 1
        assert connection.exec_driver_sql(DECISION_JOBS).scalar() == 1


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


def test_dingpass_reconcile_recovers_a_dropped_event(
    approving_api, sandbox, dingtalk_config, run_cli
):
    token = approving_api.post("/applications", a_form()).get_json()["token"]
    faults(sandbox, drop_events=1)
    instance_id = decide(sandbox, "approve")
    time.sleep(1.1)  # older than RECONCILE_AFTER
    result = run_cli("reconcile", env=cli_env(dingtalk_config))
    assert result.exit_code == 0, result.output
    assert f"recovered 1: {instance_id}" in result.output
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


def test_dingpass_reconcile_without_dingtalk_says_what_to_set(run_cli):
    result = run_cli("reconcile")
    assert (
        result.exit_code == 1
        and "DingTalk is not configured: set DINGTALK_APP_KEY" in result.output
    )
