"""The backend's trigger takes only calls FC's front door lets through: signed by the frontend
with its temporary credentials, fresh, for the backend, in the scheme of FC 3.0 (s.yaml) or
FC 2.0 (template.yml). The proxy's HMAC is a second lock."""

import time

import fc2
import pytest
import requests

from frontend.backend_client import BackendClient
from frontend.fc_signature import FcCredentials, fc2_trigger_headers, trigger_headers
from tests.integration.conftest import SECRET, LiveServer, a_form
from tests.integration.fc_front_door import FcFrontDoor, Sts
from tests.integration.test_frontend import frontend_for

FRONTEND_ROLE = Sts(
    "STS.frontend-key", "frontend-secret", "frontend-sts-token", frozenset({"dingpass-backend"})
)
"""The frontend's role: it may invoke the backend and nothing else."""
CORE_ROLE = Sts("STS.core-key", "core-secret", "core-sts-token", frozenset({"dingpass-runner"}))
FRONTEND = FcCredentials(
    FRONTEND_ROLE.access_key_id, FRONTEND_ROLE.access_key_secret, FRONTEND_ROLE.security_token
)


@pytest.fixture
def door():
    return FcFrontDoor([FRONTEND_ROLE, CORE_ROLE])


@pytest.fixture
def trigger(door, backend):
    """The backend behind its authType ``function`` HTTP trigger."""
    server = LiveServer(door.trigger("dingpass-backend", backend))
    yield server
    server.stop()


def submit(client, headers):
    return client.post("/api/applications", json=a_form(), headers=headers)


def test_a_call_the_frontend_signs_with_its_sts_credentials_reaches_the_backend(
    trigger, door, tmp_path
):
    answer = submit(frontend_for(trigger.url, tmp_path), FRONTEND_ROLE.headers())
    assert answer.status_code == 201
    token = answer.get_json()["token"]
    status = frontend_for(trigger.url, tmp_path).get(
        f"/api/applications/{token}", headers=FRONTEND_ROLE.headers()
    )
    assert status.status_code == 200
    assert door.passed == ["dingpass-backend", "dingpass-backend"] and door.refused == []


def test_an_unsigned_call_is_refused_before_the_backend(trigger, door, tmp_path, caplog):
    answer = submit(frontend_for(trigger.url, tmp_path), {})  # no FC credentials: HMAC only
    assert door.refused == ["MissingAuthorization"] and door.passed == []
    assert answer.status_code == 503 and answer.get_json()["error"] == "backend_unavailable"
    assert "the frontend's role may fc:InvokeFunction it" in caplog.text


def test_a_call_signed_with_a_wrong_secret_is_refused(trigger, door, tmp_path):
    forged = {**FRONTEND_ROLE.headers(), "x-fc-access-key-secret": "guessed"}
    submit(frontend_for(trigger.url, tmp_path), forged)
    assert door.refused == ["SignatureNotMatch"] and door.passed == []


def test_a_call_with_another_keys_sts_token_is_refused(trigger, door, tmp_path):
    mixed = {**FRONTEND_ROLE.headers(), "x-fc-security-token": CORE_ROLE.security_token}
    submit(frontend_for(trigger.url, tmp_path), mixed)
    assert door.refused == ["InvalidSecurityToken"] and door.passed == []


def test_a_stale_call_is_refused(trigger, door, tmp_path):
    late = BackendClient(trigger.url, SECRET, 2.0, clock=lambda: time.time() - 20 * 60)
    submit(frontend_for(trigger.url, tmp_path, backend=late), FRONTEND_ROLE.headers())
    assert door.refused == ["RequestTimeTooSkewed"] and door.passed == []


def test_a_call_signed_for_another_function_is_refused(door, backend, tmp_path):
    runner = LiveServer(door.trigger("dingpass-runner", backend))
    submit(frontend_for(runner.url, tmp_path), FRONTEND_ROLE.headers())
    runner.stop()
    assert door.refused == ["AccessDenied"] and door.passed == []


def test_a_replayed_signature_on_another_request_is_refused(trigger, door, tmp_path):
    """FC's signature covers the method and path: it does not carry over to another call."""
    headers = trigger_headers(FRONTEND, "GET", "/applications/abcdefghijklmnopqrstuv", time.time())
    answer = requests.post(trigger.url + "/applications", data=b"{}", headers=headers, timeout=5)
    assert answer.status_code == 403 and door.refused == ["SignatureNotMatch"]


def test_an_fc_signed_call_without_the_proxy_signature_meets_the_second_lock(trigger, door):
    headers = trigger_headers(FRONTEND, "POST", "/applications", time.time())
    answer = requests.post(trigger.url + "/applications", json=a_form(), headers=headers, timeout=5)
    assert door.passed == ["dingpass-backend"]
    assert answer.status_code == 401 and answer.json()["error"] == "unauthorized"


# FC 2.0 (template.yml): the backend is named by service and function on the account's
# endpoint, and FC 2.0's own signature guards its AuthType FUNCTION trigger.

FC2_FRONTEND_ROLE = Sts(
    "STS.web-key", "web-secret", "web-sts-token", frozenset({"dingpass/backend"})
)
"""The dingpass-web service's role: it may invoke dingpass/backend and nothing else."""
FC2_CORE_ROLE = Sts("STS.core2-key", "core2-secret", "core2-sts", frozenset({"dingpass/runner"}))
BACKEND_PATH = "/2016-08-15/proxy/dingpass/backend"
FC2 = FcCredentials(
    FC2_FRONTEND_ROLE.access_key_id,
    FC2_FRONTEND_ROLE.access_key_secret,
    FC2_FRONTEND_ROLE.security_token,
)
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def fc2_door():
    return FcFrontDoor([FC2_FRONTEND_ROLE, FC2_CORE_ROLE])


@pytest.fixture
def endpoint(fc2_door, backend):
    """The account's FC 2.0 endpoint: dingpass/backend (and a runner) behind FUNCTION triggers."""
    server = LiveServer(
        fc2_door.fc2_endpoint({"dingpass/backend": backend, "dingpass/runner": backend})
    )
    yield server
    server.stop()


def test_fc2_a_call_the_frontend_signs_with_its_sts_credentials_reaches_the_backend(
    endpoint, fc2_door, tmp_path
):
    front = frontend_for(endpoint.url + BACKEND_PATH, tmp_path)
    answer = submit(front, FC2_FRONTEND_ROLE.headers())
    assert answer.status_code == 201
    status = front.get(
        f"/api/applications/{answer.get_json()['token']}", headers=FC2_FRONTEND_ROLE.headers()
    )
    assert status.status_code == 200
    assert fc2_door.passed == ["dingpass/backend", "dingpass/backend"] and fc2_door.refused == []


def test_fc2_an_unsigned_call_is_refused_before_the_backend(endpoint, fc2_door, tmp_path):
    answer = submit(frontend_for(endpoint.url + BACKEND_PATH, tmp_path), {})
    assert fc2_door.refused == ["MissingAuthorization"] and fc2_door.passed == []
    assert answer.status_code == 503 and answer.get_json()["error"] == "backend_unavailable"


def test_fc2_a_call_signed_with_a_wrong_secret_is_refused(endpoint, fc2_door, tmp_path):
    forged = {**FC2_FRONTEND_ROLE.headers(), "x-fc-access-key-secret": "guessed"}
    submit(frontend_for(endpoint.url + BACKEND_PATH, tmp_path), forged)
    assert fc2_door.refused == ["SignatureNotMatch"] and fc2_door.passed == []


def test_fc2_a_call_with_another_keys_sts_token_is_refused(endpoint, fc2_door, tmp_path):
    mixed = {**FC2_FRONTEND_ROLE.headers(), "x-fc-security-token": FC2_CORE_ROLE.security_token}
    submit(frontend_for(endpoint.url + BACKEND_PATH, tmp_path), mixed)
    assert fc2_door.refused == ["InvalidSecurityToken"] and fc2_door.passed == []


def test_fc2_a_call_dated_more_than_15_minutes_ago_is_refused(endpoint, fc2_door, tmp_path):
    url = endpoint.url + BACKEND_PATH
    late = BackendClient(url, SECRET, 2.0, clock=lambda: time.time() - 16 * 60, scheme="fc2")
    submit(frontend_for(url, tmp_path, backend=late), FC2_FRONTEND_ROLE.headers())
    assert fc2_door.refused == ["RequestTimeTooSkewed"] and fc2_door.passed == []


def test_fc2_a_call_signed_for_another_function_is_refused(endpoint, fc2_door, tmp_path):
    runner = endpoint.url + "/2016-08-15/proxy/dingpass/runner"
    submit(frontend_for(runner, tmp_path), FC2_FRONTEND_ROLE.headers())
    assert fc2_door.refused == ["AccessDenied"] and fc2_door.passed == []


def test_fc2_a_signature_for_the_backend_does_not_carry_over_to_another_function(
    endpoint, fc2_door
):
    """FC 2.0's signature covers the service and function in the path."""
    signed = fc2_trigger_headers(FC2, "POST", f"{BACKEND_PATH}/applications", JSON, time.time())
    answer = requests.post(
        endpoint.url + "/2016-08-15/proxy/dingpass/runner/applications",
        data=b"{}",
        headers={**JSON, **signed},
        timeout=5,
    )
    assert answer.status_code == 403 and fc2_door.refused == ["SignatureNotMatch"]


def test_fc2_the_stand_in_passes_what_the_official_sdk_signs(endpoint, fc2_door):
    """The front door checks FC 2.0's scheme as FC's own SDK (aliyun-fc2) signs it."""
    client = fc2.Client(
        endpoint=endpoint.url,
        accessKeyID=FC2.access_key_id,
        accessKeySecret=FC2.access_key_secret,
        securityToken=FC2.security_token,
    )
    answer = client.do_http_request("POST", "dingpass", "backend", "/applications", body=b"{}")
    assert fc2_door.passed == ["dingpass/backend"] and fc2_door.refused == []
    assert answer.status_code == 401  # the second lock: no proxy signature
