"""The OpenAPI description is valid 3.1, and real answers match it."""

import json
import socket
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.integration.conftest import a_form
from tests.integration.test_frontend import frontend_for

SPEC = json.loads((Path(__file__).parents[2] / "frontend" / "openapi.json").read_text())
REGISTRY = Registry().with_resource(
    "urn:openapi", Resource.from_contents(SPEC, default_specification=DRAFT202012)
)


def check(answer, path: str, method: str) -> None:
    """Validate an answer's JSON against the spec's schema for its status."""
    described = SPEC["paths"][path][method]["responses"][str(answer.status_code)]
    schema = described["content"]["application/json"]["schema"]
    resolver_schema = {"$ref": f"urn:openapi{schema['$ref']}"}
    Draft202012Validator(
        resolver_schema,
        registry=REGISTRY,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    ).validate(answer.get_json())
    for header in described.get("headers", {}):
        assert header in answer.headers


def test_the_description_is_valid_openapi_3_1():
    validate(SPEC)
    assert SPEC["openapi"] == "3.1.0"


@pytest.fixture
def front(live_backend, tmp_path):
    return frontend_for(live_backend.url, tmp_path)


def test_submitting_and_reading_status_match(front):
    submitted = front.post("/api/applications", json=a_form())
    check(submitted, "/api/applications", "post")
    status = front.get(f"/api/applications/{submitted.get_json()['token']}")
    check(status, "/api/applications/{token}", "get")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (a_form(email="x"), 422),
        (["list"], 400),
        ({"padding": "x" * 17000}, 413),
        ({"deep": json.loads("[" * 40 + "]" * 40)}, 400),
    ],
)
def test_refusals_match(front, body, status):
    answer = front.post("/api/applications", json=body)
    assert answer.status_code == status
    check(answer, "/api/applications", "post")


def test_an_unusable_idempotency_key_and_a_body_not_json_match(front):
    bad_key = front.post("/api/applications", json=a_form(), headers={"Idempotency-Key": "a b"})
    not_json = front.post("/api/applications", data="x", content_type="text/plain")
    assert (bad_key.status_code, not_json.status_code) == (400, 415)
    check(bad_key, "/api/applications", "post")
    check(not_json, "/api/applications", "post")


def test_a_submission_with_an_idempotency_key_matches(front):
    answer = front.post("/api/applications", json=a_form(), headers={"Idempotency-Key": "k-1"})
    check(answer, "/api/applications", "post")


def test_an_unavailable_backend_matches(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nobody listens there
    down = frontend_for(f"http://127.0.0.1:{port}", tmp_path)
    submitted = down.post("/api/applications", json=a_form())
    status = down.get("/api/applications/abcdefghijklmnopqrstu")
    assert submitted.status_code == status.status_code == 503
    check(submitted, "/api/applications", "post")
    check(status, "/api/applications/{token}", "get")


def test_rate_limit_and_not_found_match(front):
    for n in range(6):
        answer = front.post("/api/applications", json=a_form(email=f"r{n}@example.com"))
    assert answer.status_code == 429
    check(answer, "/api/applications", "post")
    missing = front.get("/api/applications/abcdefghijklmnopqrstu")
    check(missing, "/api/applications/{token}", "get")


def test_the_catalogue_matches(front):
    check(front.get("/catalogue.json"), "/catalogue.json", "get")
