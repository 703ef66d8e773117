"""Stream mode: the official client, connected to the sandbox gateway, takes approvals."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from approval.stream import ApprovalEventHandler, StreamWorker
from backend.approvals.dispatcher import Dispatcher
from tests.integration.conftest import APP_KEY, APP_SECRET, DECISION_JOBS, a_form
from tests.integration.relay import Relay
from tests.integration.test_approval_flow import decision_jobs, press, status_of, wait_for


class Worker:
    """A StreamWorker running on its own event loop in a thread, as `dingpass stream` runs it."""

    def __init__(self, sandbox, dispatch, idle=60.0, pong=10.0) -> None:
        handler = ApprovalEventHandler(dispatch)
        self.worker = StreamWorker(
            APP_KEY,
            APP_SECRET,
            f"{sandbox.url}/v1.0/gateway/connections/open",
            handler,
            idle_seconds=idle,
            pong_seconds=pong,
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_until_complete, args=(self.worker.start(),)
        )
        self.thread.start()
        assert wait_for(lambda: self.worker.connections >= 1)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.worker.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def gateway(sandbox):
    gateway = sandbox.deliverer.gateway
    gateway.redeliver_after, gateway.disconnect_grace = 0.3, 0.5
    return gateway


@pytest.fixture
def worker(sandbox, gateway, database, clock):
    running = Worker(sandbox, Dispatcher(database, clock).dispatch)
    yield running.worker
    running.stop()


def submitted(approving_api) -> str:
    return approving_api.post("/applications", a_form()).get_json()["token"]


def acked(gateway) -> set[str]:
    """The messages the gateway has had an answer for.

    A message not answered within the gateway's redeliver_after (0.3 s here) is sent again, so
    on a loaded machine one message can be answered more than once, in any order.
    """
    return {ack["messageId"] for ack in gateway.acks}


def approve(sandbox) -> dict:
    (instance,) = sandbox.state.instances.values()
    return sandbox.state.decide(instance.id, "approve")


def test_a_stream_event_approves_and_is_acknowledged_as_the_protocol_says(
    approving_api, sandbox, gateway, worker
):
    token = submitted(approving_api)
    sandbox.deliverer.publish(approve(sandbox))
    assert wait_for(lambda: status_of(approving_api, token) == "approved")
    assert wait_for(lambda: acked(gateway) and not gateway.waiting)
    (message_id,) = acked(gateway)
    expected = {"messageId": message_id, "code": 200, "status": "SUCCESS"}
    assert all(ack == expected for ack in gateway.acks)  # a copy sent again is answered alike


def test_the_same_event_ten_times_moves_the_application_once(
    approving_api, sandbox, gateway, worker, database
):
    token = submitted(approving_api)
    instance = approve(sandbox)
    for _ in range(10):
        sandbox.deliverer.publish(instance)
    assert wait_for(lambda: not gateway.waiting and len(acked(gateway)) == 10)
    assert {ack["status"] for ack in gateway.acks} == {"SUCCESS"}
    assert status_of(approving_api, token) == "approved"
    with database.transaction() as connection:
        assert connection.exec_driver_sql(DECISION_JOBS).scalar() == 1


def test_an_event_not_committed_is_asked_for_later_and_comes_again(
    approving_api, sandbox, gateway, database, clock
):
    dispatcher, calls = Dispatcher(database, clock), []

    def flaky(event):
        calls.append(event)
        if len(calls) == 1:
            raise ConnectionError("database gone for a moment")
        return dispatcher.dispatch(event)

    running = Worker(sandbox, flaky)
    try:
        token = submitted(approving_api)
        sandbox.deliverer.publish(approve(sandbox))
        assert wait_for(lambda: status_of(approving_api, token) == "approved")
        # The worker answers SUCCESS after the dispatch commits: wait for it before stopping.
        assert wait_for(lambda: not gateway.waiting)
    finally:
        running.stop()
    first, *then = [ack["status"] for ack in gateway.acks]
    assert first == "LATER" and set(then) == {"SUCCESS"}
    assert len(acked(gateway)) == 1  # redelivered with the same messageId


def test_terminate_in_the_console_terminates_the_application_over_stream(
    approving_api, sandbox, gateway, worker, database
):
    token = submitted(approving_api)
    press(sandbox, "terminate")
    assert wait_for(lambda: status_of(approving_api, token) == "terminated")
    assert wait_for(lambda: acked(gateway) and not gateway.waiting)
    assert {ack["status"] for ack in gateway.acks} == {"SUCCESS"}
    assert decision_jobs(database) == ["send_refusal_mail"]


def test_the_client_answers_every_ping_with_its_opaque(gateway, worker):
    gateway.ping_every = 0.2
    assert wait_for(lambda: len(gateway.pongs) >= 2)
    for pong in list(gateway.pongs):
        sent = gateway.pings[pong["messageId"]]
        assert pong == {"messageId": pong["messageId"], "code": 200, "opaque": sent}


def test_it_reconnects_when_the_gateway_says_disconnect(approving_api, sandbox, gateway, worker):
    (first,) = gateway.connections
    gateway.disconnect_all()
    # The worker counts its second connection before the gateway has registered it.
    assert wait_for(
        lambda: (
            worker.connections == 2
            and first not in gateway.connections
            and len(gateway.connections) == 1
        )
    )
    token = submitted(approving_api)
    sandbox.deliverer.publish(approve(sandbox))
    assert wait_for(lambda: status_of(approving_api, token) == "approved")


def test_after_disconnect_the_gateway_closes_a_connection_the_client_keeps(gateway):
    opened = gateway.open({"clientId": APP_KEY, "clientSecret": APP_SECRET})
    with connect(f"{opened['endpoint']}?ticket={opened['ticket']}") as websocket:
        assert wait_for(lambda: len(gateway.connections) == 1)
        gateway.disconnect_all()
        told = json.loads(websocket.recv(timeout=5))
        assert (told["type"], told["headers"]["topic"]) == ("SYSTEM", "disconnect")
        started = time.monotonic()
        with pytest.raises(ConnectionClosed):
            websocket.recv(timeout=5)  # this client ignores the frame; the gateway does not
        assert gateway.disconnect_grace <= time.monotonic() - started + 0.1
    assert wait_for(lambda: not gateway.connections)


def test_a_silently_dead_connection_is_detected_and_replaced(
    approving_api, sandbox, gateway, database, clock
):
    relay = Relay(urlsplit(gateway.endpoint).port)
    gateway.advertised = f"ws://127.0.0.1:{relay.port}/connect"
    running = Worker(sandbox, Dispatcher(database, clock).dispatch, idle=0.3, pong=0.3)
    try:
        relay.freeze()  # no bytes either way, and nobody is told
        assert wait_for(lambda: running.worker.connections == 2, seconds=10)
        token = submitted(approving_api)
        sandbox.deliverer.publish(approve(sandbox))
        assert wait_for(lambda: status_of(approving_api, token) == "approved")
    finally:
        running.stop()
        relay.close()


def test_dingpass_stream_stops_cleanly_on_sigterm(sandbox, dingtalk_config, tmp_path):
    env = {
        **os.environ,
        "DINGTALK_EVENT_MODE": "stream",
        "DINGTALK_APP_KEY": APP_KEY,
        "DINGTALK_APP_SECRET": APP_SECRET,
        "DINGTALK_API_BASE": sandbox.url,
        "DATABASE_URL": dingtalk_config.database,
    }
    script = Path(sys.executable).with_name("dingpass")
    process = subprocess.Popen(
        [script, "stream"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert wait_for(lambda: sandbox.deliverer.gateway.connections, seconds=10)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=10)
    assert process.returncode == 0 and time.monotonic() - started < 5
    assert "Stopped." in output and "Traceback" not in output
