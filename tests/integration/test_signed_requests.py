"""The backend answers only fresh requests signed with the shared secret: else 401."""

import json
import time

import pytest

from tests.integration.conftest import a_form, signed

BODY = json.dumps(a_form()).encode()


def post(backend, headers, body=BODY):
    return backend.test_client().post("/applications", data=body, headers=headers)


def test_a_signed_request_is_taken(backend):
    assert post(backend, signed("POST", "/applications", BODY)).status_code == 201


def test_an_unsigned_request_is_refused(backend):
    answer = post(backend, {"Content-Type": "application/json"})
    assert answer.status_code == 401
    assert answer.get_json()["message"]["en"] == "The request is not signed."


def test_a_request_signed_with_another_secret_is_refused(backend):
    answer = post(backend, signed("POST", "/applications", BODY, secret="guess"))
    assert answer.status_code == 401
    assert answer.get_json()["message"]["en"] == "The request's signature is not valid."


@pytest.mark.parametrize("age", [301, -301, 86400])
def test_a_request_signed_more_than_five_minutes_away_is_refused(backend, age):
    answer = post(backend, signed("POST", "/applications", BODY, at=time.time() - age))
    assert answer.status_code == 401
    assert answer.get_json()["message"]["en"] == "The request's signature has expired."


def test_a_swapped_body_is_refused(backend):
    headers = signed("POST", "/applications", BODY)
    assert (
        post(backend, headers, BODY.replace(b'"quantity": 5', b'"quantity": 50')).status_code == 401
    )


def test_a_swapped_client_ip_is_refused(backend):
    headers = signed("POST", "/applications", BODY) | {"X-Dingpass-Client-Ip": "10.0.0.1"}
    assert post(backend, headers).status_code == 401


def test_a_signature_for_another_path_is_refused(backend):
    headers = signed("GET", "/applications/abc")
    assert backend.test_client().get("/applications/xyz", headers=headers).status_code == 401


def test_the_health_check_needs_no_signature(backend):
    assert backend.test_client().get("/healthz").status_code == 200
