"""Hostile requests at the public and signed HTTP edges: a clear 4xx that says why, never a 500."""

import json

import pytest
import requests

from backend.signed_requests import TIMESTAMP
from tests.integration.conftest import LiveServer, a_form, signed
from tests.integration.test_frontend import frontend_for

DEEP = b"[" * 5000 + b"]" * 5000
FORM = json.dumps(a_form()).encode()
PADDED = FORM + b" " * 20_000
"""A form whose first 16 KB parse on their own: cut there, it would be taken."""


@pytest.fixture
def front(live_backend, tmp_path):
    return frontend_for(live_backend.url, tmp_path)


def stored(database) -> int:
    with database.transaction() as connection:
        return connection.exec_driver_sql("select count(*) from applications").scalar()


def chunked(url: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    """POST ``body`` with Transfer-Encoding: chunked, as a client that gives no length does."""
    pieces = iter([body[at : at + 4096] for at in range(0, len(body), 4096)])
    return requests.post(url, data=pieces, headers=headers, timeout=10)


def test_json_nested_5000_deep_is_refused_by_the_frontend(front, database):
    answer = front.post("/api/applications", data=DEEP, content_type="application/json")
    assert answer.status_code == 400
    assert answer.get_json()["message"]["en"].startswith("The body nests arrays or objects")
    assert stored(database) == 0


def test_brackets_inside_strings_do_not_count_as_nesting(front):
    answer = front.post("/api/applications", json=a_form(note="[" * 100 + "{" * 100))
    assert answer.status_code == 201


def test_a_timestamp_header_of_non_ascii_digits_is_unsigned(backend):
    headers = signed("POST", "/applications", FORM) | {TIMESTAMP: "²"}
    answer = backend.test_client().post("/applications", data=FORM, headers=headers)
    assert answer.status_code == 401
    assert answer.get_json()["message"]["en"] == "The request is not signed."


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("product=acme-erp&feature=9F2C&version=" + "8" * 3000, "version is 3000 characters"),
        ("product=a&feature=" + "中" * 299, "feature is 299 characters"),
        (
            "product=" + "😀" * 64 + "&feature=" + "😀" * 128 + "&version=" + "😀" * 64,
            "The catalogue has no product",
        ),
    ],
)
def test_a_qr_request_too_long_or_not_in_the_catalogue_is_a_400_that_says_why(front, query, reason):
    answer = front.get(f"/qr?{query}")
    assert answer.status_code == 400
    assert reason in answer.get_json()["message"]["en"]


@pytest.mark.parametrize(
    "forwarded",
    ["not-an-address", "<script>", "fe80::1%" + "a" * 60, "203.0.113.7" + " " * 3 + "x"],
)
def test_a_forwarded_client_address_that_is_not_an_ip_is_refused(
    live_backend, tmp_path, database, forwarded
):
    client = frontend_for(live_backend.url, tmp_path, hops=1)
    answer = client.post("/api/applications", json=a_form(), headers={"X-Forwarded-For": forwarded})
    assert answer.status_code == 400
    assert "(from X-Forwarded-For)" in answer.get_json()["message"]["en"]
    assert stored(database) == 0


def test_a_chunked_body_over_16_kb_is_413_at_the_frontend(live_backend, tmp_path, database):
    frontend = LiveServer(frontend_for(live_backend.url, tmp_path).application)
    answer = chunked(
        f"{frontend.url}/api/applications", PADDED, {"Content-Type": "application/json"}
    )
    frontend.stop()
    assert answer.status_code == 413
    assert answer.json()["error"] == "request_too_large"
    assert stored(database) == 0


def test_a_chunked_body_over_16_kb_is_413_at_the_backend(live_backend, database):
    headers = signed("POST", "/applications", PADDED[: 16 * 1024])  # what a cut body would match
    answer = chunked(f"{live_backend.url}/applications", PADDED, headers)
    assert answer.status_code == 413
    assert stored(database) == 0


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""],
)
def test_a_body_not_declared_as_json_is_415(front, database, content_type):
    answer = front.post("/api/applications", data=FORM, headers={"Content-Type": content_type})
    assert answer.status_code == 415
    assert answer.get_json()["error"] == "unsupported_media_type"
    assert stored(database) == 0


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/api/applications/abcdefghijklmnopqrstu", "GET"),
        ("PUT", "/api/applications", "POST"),
    ],
)
def test_a_405_from_the_frontend_says_what_is_allowed(front, method, path, allowed):
    answer = front.open(path, method=method)
    assert answer.status_code == 405 and answer.is_json
    assert allowed in answer.headers["Allow"]


def test_a_405_from_the_backend_says_what_is_allowed(backend):
    answer = backend.test_client().get("/applications", headers=signed("GET", "/applications"))
    assert answer.status_code == 405 and answer.is_json
    assert "POST" in answer.headers["Allow"]


@pytest.mark.parametrize(
    "body",
    [b'{"company": "\\ud800\\u8d85"}', b'{"company": "\xed\xa0\x80"}', b'{"company": "\xff"}'],
)
def test_lone_surrogates_and_broken_utf8_in_a_body_are_a_4xx(front, database, body):
    answer = front.post("/api/applications", data=body, content_type="application/json")
    assert 400 <= answer.status_code < 500 and answer.get_json()["message"]["en"]
    assert stored(database) == 0
