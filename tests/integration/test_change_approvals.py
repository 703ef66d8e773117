"""Changes approved in DingTalk, end to end against the DingTalk and cloud sandboxes: a change
asked for through the API waits for its approver; an employee's agreed request becomes a
change; the outcome goes back as a comment, a work notification and the caller's callback."""

import json
import threading
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from sqlalchemy import Engine, select

from approval.app import create_app as create_approval
from backend.approvals.dispatcher import apply_held, dispatcher_for
from backend.approvals.events import ApprovalEvent
from backend.approvals.reconciler import Reconciler
from backend.approvals.wiring import dingtalk_client
from backend.changes.forms import load_change_forms
from backend.changes.names import COMMENT_KIND
from backend.clock import utc_now
from backend.jobs import queue
from backend.storage import changes as store
from backend.storage.schema import approval_events
from backend.work import standalone_runner
from sandbox.delivery import CallbackTarget
from sandbox.forms import CLOUD_REQUEST_FORM, text_form
from sandbox.server import Sandbox, SandboxSettings
from tests.conftest import wait_for
from tests.integration.conftest import (
    APP_KEY,
    APP_SECRET,
    PROCESS_CODE,
    LiveServer,
    faults,
    meanwhile,
)
from tests.integration.test_changes_api import AppClient
from tests.integration.test_changes_cloud import AK, NEW_NETWORK, SECRET
from tests.integration.test_stream import Worker

FORMS = load_change_forms(Path(__file__).parents[2] / "change-forms.example.toml")
(APPROVAL,) = FORMS.approvals
REQUEST_FORM = CLOUD_REQUEST_FORM.process_code
EMPLOYEE = "zhangsan01"
AGENT_ID = 1000001
A_REQUEST = {
    "实例名称": "web-2",
    "实例规格": "ecs.g7.large",
    "可用区": "cn-hangzhou-h",
    "镜像": "ubuntu_22_04_x64_20G_alibase_20240130.vhd",
    "系统盘(GiB)": "60",
    "用途": "测试环境",
}


@pytest.fixture
def sandbox():
    """The DingTalk sandbox with dingpass's change form and the employees' request form."""
    labels = tuple(label for label, _ in APPROVAL.fields)
    change_form = text_form(APPROVAL.process_code, "云资源变更审批", labels)
    settings = SandboxSettings(
        APP_KEY, APP_SECRET, PROCESS_CODE, forms=(change_form, CLOUD_REQUEST_FORM)
    )
    server = Sandbox(settings).start()
    yield server
    server.stop()


@pytest.fixture
def cloud():
    from sandbox.cloud.server import CloudSandbox

    server = CloudSandbox(keys={AK: SECRET}, ready_after=0.2).start()
    yield server
    server.stop()


@pytest.fixture
def change_config(dingtalk_config, cloud):
    return replace(
        dingtalk_config,
        cloud_endpoint=cloud.url,
        cloud_access_key_id=AK,
        cloud_access_key_secret=SECRET,
        change_forms=FORMS,
        dingtalk_agent_id=AGENT_ID,
    )


@pytest.fixture
def itsm(change_config, database):
    from backend.app import create_app
    from backend.apps import store

    app = create_app(change_config, clock=utc_now)
    with database.transaction() as connection:
        caller = store.create(connection, "itsm", utc_now())
    yield AppClient(app, caller, utc_now)
    app.extensions["database"].dispose()


@pytest.fixture
def callbacks(change_config, database, sandbox):
    """The approval function live, the sandbox pushing every event to it over HTTP."""
    app = create_approval(change_config, clock=utc_now)
    server = LiveServer(app)
    sandbox.deliverer.target = CallbackTarget(
        f"{server.url}/dingtalk/callback",
        change_config.dingtalk_callback_token,
        change_config.dingtalk_callback_aes_key,
        APP_KEY,
    )
    yield server
    server.stop()
    app.extensions["database"].dispose()


@pytest.fixture
def running(change_config):
    """A runner loop in a thread on the real clock, with DingTalk and the cloud configured."""
    jobs = standalone_runner(change_config, utc_now)
    stop = threading.Event()
    thread = threading.Thread(target=jobs.loop, args=(0.2, stop), daemon=True)
    thread.start()
    yield jobs
    stop.set()
    jobs.kick()
    thread.join(5)
    jobs.database.dispose()


class Receiver:
    """A caller's callback endpoint on loopback: keeps each request's headers and body."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 -- http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/dingpass/changes"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.server.shutdown()
    server.server.server_close()


def progress(itsm, change_id: str) -> dict:
    return itsm.send("GET", f"/api/v1/changes/{change_id}").get_json()


def until(itsm, change_id: str, *statuses: str, seconds: float = 30) -> dict:
    assert wait_for(lambda: progress(itsm, change_id)["status"] in statuses, seconds), progress(
        itsm, change_id
    )
    return progress(itsm, change_id)


def opened(itsm, change_id: str) -> str:
    assert wait_for(lambda: progress(itsm, change_id)["approval"]["instance_id"]), progress(
        itsm, change_id
    )
    return progress(itsm, change_id)["approval"]["instance_id"]


def press(sandbox, instance_id: str, action: str) -> None:
    answer = requests.post(
        f"{sandbox.url}/console/{instance_id}/{action}",
        headers={"Accept": "application/json"},
        timeout=5,
    )
    answer.raise_for_status()


def start_request(sandbox, values: dict, originator: str = EMPLOYEE) -> str:
    """An employee's request, started from the sandbox console as DingTalk's app would."""
    answer = requests.post(
        f"{sandbox.url}/console/start/{REQUEST_FORM}",
        json={"originatorUserId": originator, "values": values},
        headers={"Accept": "application/json"},
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["instanceId"]


def remarks(sandbox, instance_id: str) -> list[str]:
    """The comments on an instance, as GetProcessInstance shows them to DingTalk's users."""
    token = requests.post(
        f"{sandbox.url}/v1.0/oauth2/accessToken",
        json={"appKey": APP_KEY, "appSecret": APP_SECRET},
        timeout=5,
    ).json()["accessToken"]
    shown = requests.get(
        f"{sandbox.url}/v1.0/workflow/processInstances",
        params={"processInstanceId": instance_id},
        headers={"x-acs-dingtalk-access-token": token},
        timeout=5,
    ).json()["result"]
    return [r["remark"] for r in shown["operationRecords"] if r["type"] == "ADD_REMARK"]


def notifications(sandbox, user_id: str) -> list[dict]:
    listed = requests.get(f"{sandbox.url}/sandbox/notifications", timeout=5).json()
    return [n for n in listed["notifications"] if n["userId"] == user_id]


def form_of(sandbox, instance_id: str) -> dict[str, str]:
    return {value["name"]: value["value"] for value in sandbox.state.instances[instance_id].form}


def test_a_change_that_needs_approval_waits_with_its_approval_opened(itsm, sandbox, running):
    change = itsm.send("POST", "/api/v1/changes", NEW_NETWORK).get_json()
    assert change["status"] == "awaiting_approval"
    instance_id = opened(itsm, change["id"])

    shown = progress(itsm, change["id"])
    assert shown["approval"] == {
        "process_code": APPROVAL.process_code,
        "instance_id": instance_id,
        "decision": "pending",
        "decided_at": None,
    }
    assert {step["status"] for step in shown["steps"]} == {"planned"}


def test_the_approver_reads_what_will_be_created_and_who_asked(itsm, sandbox, running):
    change = itsm.send("POST", "/api/v1/changes", NEW_NETWORK).get_json()
    form = form_of(sandbox, opened(itsm, change["id"]))
    assert form["变更编号"] == change["id"]
    assert form["变更类型"] == "ECS 实例 (ecs.instance)"
    assert form["地域"] == "cn-hangzhou"
    assert "instance_type: ecs.g7.large" in form["规格"].splitlines()
    assert form["数量"].startswith("4 个资源")
    assert form["申请人"] == "itsm（API）"
    # The cloud sandbox's prices: ecs.g7.large and a 40 GiB ESSD, 730 hours a month.
    assert form["预估月费用"] == "约 ¥438.00/月（按量付费，按 730 小时计）"


def test_an_approved_change_runs_to_succeeded_and_its_caller_is_called_back(
    itsm, sandbox, callbacks, running, cloud, receiver
):
    body = {**NEW_NETWORK, "callback_url": receiver.url}
    change = itsm.send("POST", "/api/v1/changes", body).get_json()
    instance_id = opened(itsm, change["id"])
    assert cloud.count("vpc") == 0  # nothing is made before the approver agrees

    press(sandbox, instance_id, "approve")
    done = until(itsm, change["id"], "succeeded", "failed")
    assert done["status"] == "succeeded", done
    assert done["approval"]["decision"] == "agree" and done["approval"]["decided_at"]
    assert (cloud.count("vpc"), cloud.count("vswitch"), cloud.count("instance")) == (1, 1, 1)
    assert wait_for(lambda: receiver.received)
    headers, sent = receiver.received[0]
    assert json.loads(sent)["change"]["status"] == "succeeded"
    assert headers["X-Dingpass-Signature"].startswith("sha256=")


def test_the_outcome_is_commented_on_the_approval_instance(
    itsm, sandbox, callbacks, running, cloud
):
    change = itsm.send("POST", "/api/v1/changes", NEW_NETWORK).get_json()
    instance_id = opened(itsm, change["id"])
    press(sandbox, instance_id, "approve")
    done = until(itsm, change["id"], "succeeded", "failed")
    assert wait_for(lambda: remarks(sandbox, instance_id))
    (comment,) = remarks(sandbox, instance_id)
    assert change["id"] in comment and "已完成" in comment
    for resource in done["resources"]:
        assert resource["id"] in comment


def test_a_refused_change_ends_refused_with_nothing_created(
    itsm, sandbox, callbacks, running, cloud, receiver
):
    change = itsm.send("POST", "/api/v1/changes", {**NEW_NETWORK, "callback_url": receiver.url})
    change_id = change.get_json()["id"]
    press(sandbox, opened(itsm, change_id), "refuse")
    done = until(itsm, change_id, "refused")
    assert done["approval"]["decision"] == "refuse"
    assert {step["status"] for step in done["steps"]} == {"cancelled"}
    assert wait_for(lambda: receiver.received)
    assert json.loads(receiver.received[0][1])["change"]["status"] == "refused"
    assert cloud.count("vpc") == cloud.count("instance") == 0


def test_a_withdrawn_approval_cancels_the_change(itsm, sandbox, callbacks, running, cloud):
    change_id = itsm.send("POST", "/api/v1/changes", NEW_NETWORK).get_json()["id"]
    press(sandbox, opened(itsm, change_id), "terminate")
    assert until(itsm, change_id, "cancelled")["approval"]["decision"] == "terminate"
    assert cloud.count("vpc") == 0


def test_a_type_that_needs_no_approval_runs_at_once(itsm, sandbox, running, cloud):
    vpc = {"type": "vpc", "request_id": "ITSM-VPC", "spec": {"cidr_block": "10.1.0.0/16"}}
    change = itsm.send("POST", "/api/v1/changes", vpc).get_json()
    assert change["status"] == "planned" and change["approval"] is None
    assert until(itsm, change["id"], "succeeded")["resources"][0]["id"].startswith("vpc-")
    assert not sandbox.state.instances


def test_an_employees_agreed_request_runs_and_is_answered_in_dingtalk(
    itsm, sandbox, callbacks, running, cloud, database
):
    instance_id = start_request(sandbox, A_REQUEST)
    press(sandbox, instance_id, "approve")
    assert wait_for(lambda: cloud.count("instance") == 1, 30)

    assert wait_for(lambda: remarks(sandbox, instance_id), 30)
    (comment,) = remarks(sandbox, instance_id)
    (instance,) = (resource.id for resource in cloud.state.all("instance"))
    assert "已完成" in comment and instance in comment
    assert wait_for(lambda: notifications(sandbox, EMPLOYEE))
    (notice,) = notifications(sandbox, EMPLOYEE)
    assert notice["agentId"] == AGENT_ID and instance in json.dumps(
        notice["msg"], ensure_ascii=False
    )
    with database.transaction() as connection:
        row = connection.exec_driver_sql("select origin, requester, type, spec from changes").one()
    assert row[:3] == ("dingtalk", EMPLOYEE, "ecs.instance")
    assert json.loads(row[3])["system_disk_size"] == 60  # a form's text, as the plugin's int


def test_a_request_with_an_invalid_value_is_answered_with_which_value_and_why(
    sandbox, callbacks, running, cloud, database
):
    instance_id = start_request(sandbox, {**A_REQUEST, "实例名称": "1-not-a-name"})
    press(sandbox, instance_id, "approve")
    assert wait_for(lambda: remarks(sandbox, instance_id), 30)
    (comment,) = remarks(sandbox, instance_id)
    assert "实例名称「1-not-a-name」" in comment and "未创建任何资源" in comment
    assert wait_for(lambda: notifications(sandbox, EMPLOYEE))
    assert cloud.count("vpc") == cloud.count("instance") == 0
    with database.transaction() as connection:
        assert connection.exec_driver_sql("select count(*) from changes").scalar() == 0


def test_a_refused_request_makes_nothing(sandbox, callbacks, running, cloud, database):
    instance_id = start_request(sandbox, A_REQUEST)
    press(sandbox, instance_id, "refuse")
    assert wait_for(lambda: outcomes(database, instance_id) == ["no_decision"])
    assert cloud.count("vpc") == 0 and not remarks(sandbox, instance_id)


def outcomes(database, instance_id: str) -> list[str]:
    """What the deliveries of an instance's events did, as the dispatcher recorded it."""
    events = approval_events.c
    query = select(events.outcome).where(events.instance_id == instance_id).order_by(events.id)
    with database.transaction() as connection:
        return list(connection.execute(query).scalars())


def test_ten_deliveries_over_http_and_stream_run_the_change_once(
    change_config, sandbox, callbacks, running, cloud, database
):
    worker = Worker(sandbox, dispatcher_for(change_config, database, utc_now).dispatch)
    try:
        instance_id = start_request(sandbox, A_REQUEST)
        instance = sandbox.state.decide(instance_id, "approve")
        for _ in range(5):  # each publish goes to the HTTP callback and to the Stream client
            sandbox.deliverer.publish(instance)
        gateway = sandbox.deliverer.gateway
        assert wait_for(lambda: len(gateway.acks) == 5 and not gateway.waiting, 30)
        assert wait_for(lambda: cloud.count("instance") == 1, 30)
    finally:
        worker.stop()
    pushed = [push for push in sandbox.state.pushes_of(instance_id) if push.success]
    assert len(pushed) == 5
    with database.transaction() as connection:
        assert connection.exec_driver_sql("select count(*) from changes").scalar() == 1
        kinds = "select count(*) from jobs where kind = 'take_change_request'"
        assert connection.exec_driver_sql(kinds).scalar() == 1
    assert (cloud.count("vpc"), cloud.count("instance")) == (1, 1)


def test_the_reconciler_runs_a_request_whose_events_were_all_lost(
    change_config, sandbox, running, cloud, database
):
    instance_id = start_request(sandbox, A_REQUEST)
    sandbox.state.decide(instance_id, "approve")  # decided, and no event ever delivered
    reconciler = Reconciler(
        database,
        dingtalk_client(change_config, database, utc_now),
        dispatcher_for(change_config, database, utc_now, running.kick),
        after=timedelta(seconds=0),
        clock=utc_now,
        request_forms=[REQUEST_FORM],
    )
    assert reconciler.run().recovered == [instance_id]
    assert wait_for(lambda: cloud.count("instance") == 1, 30)
    assert reconciler.run().checked == 0  # decided on record: not read again


@pytest.fixture
def formless(change_config):
    """A DingTalk without the change approval form: every start of one is refused."""
    server = Sandbox(SandboxSettings(APP_KEY, APP_SECRET, PROCESS_CODE)).start()
    yield replace(change_config, dingtalk_api_base=server.url, dingtalk_oapi_base=server.url)
    server.stop()


def test_a_change_whose_approval_cannot_be_opened_for_a_day_fails_and_its_caller_is_told(
    formless, database, clock, receiver
):
    from backend.app import create_app
    from backend.apps import store

    app = create_app(formless, clock=clock)
    with database.transaction() as connection:
        caller = store.create(connection, "itsm", clock())
    itsm = AppClient(app, caller, clock)
    body = {**NEW_NETWORK, "callback_url": receiver.url}
    change_id = itsm.send("POST", "/api/v1/changes", body).get_json()["id"]
    jobs = standalone_runner(formless, clock)
    for _ in range(400):  # every try refused (no such form), backing off for a day
        jobs.run_due()
        clock.advance(300)
    shown = progress(itsm, change_id)
    assert shown["status"] == "failed" and "could not be opened" in shown["error"]
    assert {step["status"] for step in shown["steps"]} == {"cancelled"}
    jobs.run_due()
    assert wait_for(lambda: receiver.received)
    app.extensions["database"].dispose()
    jobs.database.dispose()


@pytest.mark.parametrize("url", ["http://[::1", "http://a:99999/", "ftp://a/", "/relative"])
def test_a_callback_url_that_is_no_url_is_refused_by_field(itsm, url):
    answer = itsm.send("POST", "/api/v1/changes", {**NEW_NETWORK, "callback_url": url})
    assert answer.status_code == 422, answer.get_json()
    assert "callback_url" in answer.get_json()["fields"]


def test_an_agreed_event_ahead_of_dingtalks_read_is_taken_once_dingtalk_shows_it(
    change_config, sandbox, cloud, database, clock
):
    instance_id = start_request(sandbox, A_REQUEST)
    event = {"processCode": REQUEST_FORM, "processInstanceId": instance_id}
    agreed = ApprovalEvent(instance_id, "finish", "agree", "http", event)
    dispatcher_for(change_config, database, clock).dispatch(agreed)
    jobs = standalone_runner(change_config, clock)
    jobs.run_due()  # DingTalk still shows it running: asked again later, not dropped
    sandbox.state.decide(instance_id, "approve")
    clock.advance(600)
    jobs.run_due()
    with database.transaction() as connection:
        assert connection.exec_driver_sql("select count(*) from changes").scalar() == 1
    jobs.database.dispose()


def test_the_reconciler_reads_only_decided_requests(change_config, sandbox, database):
    for _ in range(3):
        start_request(sandbox, A_REQUEST)  # running: nothing to recover
    reconciler = Reconciler(
        database,
        dingtalk_client(change_config, database, utc_now),
        dispatcher_for(change_config, database, utc_now),
        after=timedelta(seconds=0),
        clock=utc_now,
        request_forms=[REQUEST_FORM],
    )
    assert reconciler.run().checked == 0
    assert sandbox.state.answers("get") == []


def test_a_comment_whose_answer_was_lost_is_not_written_twice(
    change_config, sandbox, database, clock
):
    instance_id = start_request(sandbox, A_REQUEST)
    payload = {"instance_id": instance_id, "text": "dingpass：已开通。"}
    with database.transaction() as connection:
        queue.enqueue(connection, COMMENT_KIND, None, clock(), part="t", payload=payload)
    dingtalk_client(change_config, database, clock).access_token()  # cached before the fault
    jobs = standalone_runner(change_config, clock)
    faults(sandbox, slow_seconds=3.5)  # past the client's 3 s: the comment lands, unanswered
    jobs.run_due()
    faults(sandbox, slow_seconds=0)
    assert wait_for(lambda: remarks(sandbox, instance_id))
    clock.advance(600)
    jobs.run_due()
    assert remarks(sandbox, instance_id) == ["dingpass：已开通。"]
    jobs.database.dispose()


def test_a_decision_whose_event_was_lost_is_found_by_the_runners_timer(
    change_config, sandbox, database, clock
):
    from backend.app import create_app
    from backend.apps import store
    from backend.checks.run import CheckSettings, check_now

    app = create_app(change_config, clock=clock)
    with database.transaction() as connection:
        caller = store.create(connection, "itsm", clock())
    itsm = AppClient(app, caller, clock)
    change_id = itsm.send("POST", "/api/v1/changes", NEW_NETWORK).get_json()["id"]
    jobs = standalone_runner(change_config, clock)
    jobs.run_due()  # opens the approval
    instance_id = progress(itsm, change_id)["approval"]["instance_id"]
    sandbox.state.decide(instance_id, "approve")  # and its event never arrives
    settings = CheckSettings.from_config(change_config)
    for _ in range(3):  # the timer, once a minute; the reconciliation runs every 10 minutes
        check_now(jobs.context, settings, clock)
        jobs.run_due()
        clock.advance(change_config.reconcile_after + 1)
    shown = progress(itsm, change_id)
    assert shown["approval"]["decision"] == "agree" and shown["status"] != "awaiting_approval"
    app.extensions["database"].dispose()
    jobs.database.dispose()


@pytest.mark.mariadb
def test_a_start_answer_that_links_the_approval_during_its_adoption_is_no_second_instance(
    snapshot_isolation, itsm, sandbox, change_config, database, clock, caplog
):
    change = itsm.send("POST", "/api/v1/changes", NEW_NETWORK).get_json()
    assert progress(itsm, change["id"])["approval"]["instance_id"] is None  # no runner yet
    carrying = [{"name": APPROVAL.change_label, "value": change["id"]}]
    instance_id = sandbox.state.start(APPROVAL.process_code, "manager01", 1, carrying).id
    dispatcher_for(change_config, database, clock).dispatch(
        ApprovalEvent(instance_id, "start", None, "http", {"processCode": APPROVAL.process_code})
    )
    jobs = standalone_runner(change_config, clock)

    def answered() -> None:  # the start's answer comes back to the open job, which links it
        with database.transaction() as other:
            found = store.by_public_id(other, change["id"])
            assert store.link_instance(other, found.id, instance_id)
            apply_held(other, instance_id, clock())

    with meanwhile(Engine, lambda sql: "WHERE changes.public_id =" in sql, answered) as done:
        assert jobs.context.approvals.adopt(instance_id)
    jobs.database.dispose()

    assert done
    assert progress(itsm, change["id"])["approval"]["instance_id"] == instance_id
    assert "carries" not in caplog.text  # no "second instance" sent to a person
