"""On Function Compute the runner is kicked by an asynchronous invocation, signed with the
temporary credentials FC gives the request that recorded the work, and checked by a stand-in
of FC's front door as FC checks it: through FC 3.0's API for s.yaml's ``dingpass-runner``, and
through FC 2.0's for template.yml's ``dingpass/runner`` (service/function)."""

import dataclasses
import json
import time
from datetime import datetime, timezone

import pytest

from approval.app import create_app as create_approval
from backend.exceptions import ConfigError
from backend.jobs.kick import configured_kick
from sandbox import callback_crypto as dingtalk
from tests.integration.conftest import LiveServer
from tests.integration.fc_front_door import FcFrontDoor, Sts
from tests.integration.test_callback import AES_KEY, AGREE, APP_KEY, TOKEN

CORE_ROLE = Sts(
    "STS.test-key-id",
    "test-secret",
    "test-sts-token",
    frozenset({"dingpass-runner", "dingpass/runner"}),
)
"""The credentials of the functions in the VPC: their role may invoke the runner (FC 3.0's
function, FC 2.0's service/function)."""
FC_HEADERS = CORE_ROLE.headers()


@pytest.fixture
def front_door():
    """FC's front door for an account that issued CORE_ROLE's credentials."""
    return FcFrontDoor([CORE_ROLE])


@pytest.fixture
def fake_fc(front_door):
    """Function Compute's API, as far as an invocation goes: it checks, then records."""
    server = LiveServer(front_door.api)
    yield server.url, front_door.invocations
    server.stop()


def callback_app(config, clock, fc_url: str, function: str | None = "dingpass-runner"):
    clock.now = datetime.fromtimestamp(1779512345, timezone.utc)
    settings = dataclasses.replace(
        config,
        dingtalk_callback_token=TOKEN,
        dingtalk_callback_aes_key=AES_KEY,
        dingtalk_app_key=APP_KEY,
        fc_runner_function=function,
        fc_endpoint=fc_url,
    )
    return create_approval(settings, clock=clock)


def push(client, headers: dict[str, str]):
    encrypted = dingtalk.seal(AES_KEY, APP_KEY, json.dumps(AGREE))
    signature = dingtalk.msg_signature(TOKEN, "1779512345000", "nonce001", encrypted)
    query = {
        "msg_signature": signature,
        "timestamp": "1779512345000",
        "nonce": "nonce001",
    }
    return client.post(
        "/dingtalk/callback",
        query_string=query,
        json={"encrypt": encrypted},
        headers=headers,
    )


def test_an_approval_kicks_the_runner_function_asynchronously(
    config, database, clock, pending, fake_fc
):
    url, calls = fake_fc
    app = callback_app(config, clock, url)
    assert push(app.test_client(), FC_HEADERS).status_code == 200
    (call,) = calls
    assert call["function"] == "dingpass-runner"
    assert call["headers"]["X-Fc-Invocation-Type"] == "Async"
    assert call["headers"]["Authorization"].startswith(
        "ACS3-HMAC-SHA256 Credential=STS.test-key-id"
    )
    assert call["headers"]["X-Acs-Security-Token"] == "test-sts-token"
    app.extensions["database"].dispose()


@pytest.mark.parametrize("function", ["dingpass-runner", "dingpass/runner"])  # FC 3.0, FC 2.0
def test_a_kick_signed_with_credentials_fc_did_not_issue_is_refused(
    config, database, clock, pending, fake_fc, front_door, caplog, function
):
    url, calls = fake_fc
    app = callback_app(config, clock, url, function=function)
    forged = {**FC_HEADERS, "x-fc-access-key-secret": "not-the-secret"}
    assert push(app.test_client(), forged).status_code == 200
    assert calls == [] and front_door.refused == ["SignatureNotMatch"]
    assert f"kicking {function} failed (the timer will run the jobs)" in caplog.text
    app.extensions["database"].dispose()


@pytest.mark.parametrize("function", ["dingpass-backend", "dingpass/backend"])
def test_a_kick_of_a_function_the_role_may_not_invoke_is_refused(
    config, database, clock, pending, fake_fc, front_door, function
):
    url, calls = fake_fc
    app = callback_app(config, clock, url, function=function)
    assert push(app.test_client(), FC_HEADERS).status_code == 200
    assert calls == [] and front_door.refused == ["AccessDenied"]
    app.extensions["database"].dispose()


def test_outside_function_compute_nothing_is_invoked(config, database, clock, pending, fake_fc):
    url, calls = fake_fc
    app = callback_app(config, clock, url)
    assert push(app.test_client(), {}).status_code == 200
    assert calls == []
    app.extensions["database"].dispose()


@pytest.mark.parametrize("function", ["dingpass-runner", "dingpass/runner"])
def test_a_kick_that_fails_does_not_fail_or_hold_up_the_callback(
    config, database, clock, pending, caplog, function
):
    """No retries with pauses: FC 2.0's SDK would otherwise retry a refused connection ~30 s."""
    app = callback_app(config, clock, "http://127.0.0.1:9", function=function)
    started = time.monotonic()
    assert push(app.test_client(), FC_HEADERS).status_code == 200
    assert time.monotonic() - started < 5
    assert f"kicking {function} failed (the timer will run the jobs)" in caplog.text
    app.extensions["database"].dispose()


def test_fc2_an_approval_kicks_the_runner_of_its_service_asynchronously(
    config, database, clock, pending, fake_fc
):
    url, calls = fake_fc
    app = callback_app(config, clock, url, function="dingpass/runner")
    assert push(app.test_client(), FC_HEADERS).status_code == 200
    (call,) = calls
    assert call["function"] == "dingpass/runner"
    assert call["headers"]["X-Fc-Invocation-Type"] == "Async"
    assert call["headers"]["Authorization"].startswith("FC STS.test-key-id:")
    assert call["headers"]["X-Fc-Security-Token"] == "test-sts-token"
    assert json.loads(call["body"]) == {"source": "dingpass.kick"}
    app.extensions["database"].dispose()


@pytest.mark.parametrize("name", ["dingpass/", "/runner", "dingpass/runner/x"])
def test_a_runner_named_in_neither_form_is_refused_at_start(name):
    with pytest.raises(ConfigError, match="neither an FC 3.0 function name"):
        configured_kick(name, None)
