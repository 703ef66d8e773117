"""The backend answers only fresh requests signed with the shared secret: else 401.

The signature covers the client IP and the idempotency key as well as the body."""

import dataclasses
import json
import time

import pytest
from flask import g

from backend.app import create_app
from backend.signed_requests import IDEMPOTENCY_KEY
from tests.integration.conftest import CLIENT, SECRET, SignedClient, a_form, signed

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


def rotating(config, clock, previous: str):
    """The backend mid-rotation: a new PROXY_SECRET, and the one before it still taken."""
    settings = dataclasses.replace(
        config, proxy_secret="new-secret", proxy_secret_previous=previous
    )
    return create_app(settings, clock=clock)


def test_while_the_secret_rotates_both_the_new_and_the_previous_are_taken(config, clock):
    backend = rotating(config, clock, previous=SECRET)
    assert post(backend, signed("POST", "/applications", BODY)).status_code == 201
    body = json.dumps(a_form(email="new@example.com")).encode()
    answer = post(backend, signed("POST", "/applications", body, secret="new-secret"), body)
    assert answer.status_code == 201
    backend.extensions["database"].dispose()


def test_a_secret_older_than_the_previous_one_is_refused(config, clock):
    backend = rotating(config, clock, previous="the-one-before")
    assert post(backend, signed("POST", "/applications", BODY)).status_code == 401
    backend.extensions["database"].dispose()


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


@pytest.fixture
def probe(backend):
    """The backend with one more route that shows what the signature check kept in flask.g."""
    backend.add_url_rule(
        "/probe",
        "probe",
        lambda: {"ip": g.client_ip, "key": g.idempotency_key},
        methods=["POST"],
    )
    return SignedClient(backend)


def test_the_signed_idempotency_key_is_kept_for_the_request(probe):
    assert probe.post("/probe", {}, key="k-1_A").get_json() == {"ip": CLIENT, "key": "k-1_A"}


def test_without_an_idempotency_key_none_is_kept(probe):
    assert probe.post("/probe", {}).get_json() == {"ip": CLIENT, "key": None}


@pytest.mark.parametrize(
    "tamper",
    [
        lambda: signed("POST", "/applications", BODY, key="first") | {IDEMPOTENCY_KEY: "second"},
        lambda: signed("POST", "/applications", BODY) | {IDEMPOTENCY_KEY: "added-after-signing"},
        lambda: {
            k: v
            for k, v in signed("POST", "/applications", BODY, key="dropped").items()
            if k != IDEMPOTENCY_KEY
        },
    ],
    ids=["swapped", "added", "dropped"],
)
def test_a_swapped_added_or_dropped_idempotency_key_is_refused(backend, tamper):
    answer = post(backend, tamper())  # signed now: at collection it would expire in a long run
    assert answer.status_code == 401
    assert answer.get_json()["message"]["en"] == "The request's signature is not valid."


@pytest.mark.parametrize("key", ["has space", "k" * 65, "clé"])
def test_a_signed_idempotency_key_of_the_wrong_form_is_a_400(backend, key):
    answer = post(backend, signed("POST", "/applications", BODY, key=key))
    assert answer.status_code == 400
    assert answer.get_json()["message"]["en"].startswith("Idempotency-Key must be 1 to 64")


@pytest.mark.parametrize("ip", ["", "not-an-ip", "fe80::1%" + "a" * 60])
def test_a_signed_client_address_that_cannot_be_stored_is_a_400(backend, ip):
    answer = post(backend, signed("POST", "/applications", BODY, ip=ip))
    assert answer.status_code == 400
