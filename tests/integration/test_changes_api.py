"""The changes API over HTTP: signed as API Gateway apps sign, one change per request id, each
refusal with its own status and code, a caller seeing only its own changes.

Requests are signed by tests/app_signing.py, a client written apart from backend.apps.
"""

import json
from datetime import timedelta

import pytest

from backend.apps import store as apps
from tests.app_signing import signed_headers
from tests.integration.conftest import signed

JSON = "application/json; charset=utf-8"
VPC = {"type": "vpc", "request_id": "ITSM-42", "spec": {"cidr_block": "10.8.0.0/16"}}


@pytest.fixture
def caller(database, clock):
    """Two registered apps; the first is the caller."""
    with database.transaction() as connection:
        return [apps.create(connection, name, clock()) for name in ("itsm", "oa")]


class AppClient:
    """Requests to the backend signed as one app."""

    def __init__(self, backend, app, clock) -> None:
        self.client, self.app, self.clock = backend.test_client(), app, clock

    def send(self, method, path, body=None, *, secret=None, now_ms=None, nonce=None):
        data = b"" if body is None else json.dumps(body).encode()
        stamp = now_ms if now_ms is not None else int(self.clock().timestamp() * 1000)
        headers = signed_headers(
            self.app.app_key,
            secret or self.app.secret,
            method,
            "http://localhost" + path,
            data,
            JSON if data else None,
            now_ms=stamp,
            nonce=nonce,
        )
        return self.client.open(path, method=method, data=data, headers=headers)


@pytest.fixture
def itsm(backend, caller, clock) -> AppClient:
    return AppClient(backend, caller[0], clock)


@pytest.fixture
def oa(backend, caller, clock) -> AppClient:
    return AppClient(backend, caller[1], clock)


def test_a_change_is_taken_with_202_its_id_and_planned_steps(itsm):
    answer = itsm.send("POST", "/api/v1/changes", VPC)

    assert answer.status_code == 202
    body = answer.get_json()
    assert body["id"].startswith("chg-") and body["status"] == "planned"
    assert [(s["name"], s["status"]) for s in body["steps"]] == [("vpc", "planned")]
    assert answer.headers["Location"] == f"/api/v1/changes/{body['id']}"
    assert answer.headers["Idempotent-Replayed"] == "false"


def test_the_same_request_id_and_body_give_back_the_same_change(itsm):
    first = itsm.send("POST", "/api/v1/changes", VPC).get_json()
    again = itsm.send("POST", "/api/v1/changes", VPC)

    assert again.status_code == 202
    assert again.get_json()["id"] == first["id"]
    assert again.headers["Idempotent-Replayed"] == "true"


def test_the_same_request_id_with_another_body_is_409(itsm):
    itsm.send("POST", "/api/v1/changes", VPC)
    other = {**VPC, "spec": {"cidr_block": "10.9.0.0/16"}}

    answer = itsm.send("POST", "/api/v1/changes", other)

    assert answer.status_code == 409
    assert answer.get_json()["error"] == "conflict"


def test_the_progress_endpoint_shows_the_change_and_its_steps(itsm):
    change = itsm.send("POST", "/api/v1/changes", VPC).get_json()

    answer = itsm.send("GET", f"/api/v1/changes/{change['id']}")

    assert answer.status_code == 200
    shown = answer.get_json()
    assert shown["steps"][0]["attempts"] == 0 and shown["resources"] == []


def test_another_callers_change_is_not_found(itsm, oa):
    change = itsm.send("POST", "/api/v1/changes", VPC).get_json()

    answer = oa.send("GET", f"/api/v1/changes/{change['id']}")

    assert answer.status_code == 404


def test_a_wrong_signature_is_401_with_the_servers_string_to_sign(itsm):
    answer = itsm.send("POST", "/api/v1/changes", VPC, secret="not-the-secret")

    assert answer.status_code == 401
    assert answer.get_json()["error"] == "signature_mismatch"
    assert answer.headers["X-Ca-Error-Message"].startswith("Invalid Signature")
    assert "#/api/v1/changes" in answer.headers["X-Ca-Error-Message"]


def test_a_stale_timestamp_is_401(itsm, clock):
    stale = int((clock() - timedelta(minutes=16)).timestamp() * 1000)

    answer = itsm.send("POST", "/api/v1/changes", VPC, now_ms=stale)

    assert (answer.status_code, answer.get_json()["error"]) == (401, "timestamp_expired")


def test_a_replayed_nonce_is_401(itsm):
    itsm.send("GET", "/api/v1/changes", nonce="once-only")

    answer = itsm.send("GET", "/api/v1/changes", nonce="once-only")

    assert (answer.status_code, answer.get_json()["error"]) == (401, "nonce_replayed")


def test_a_disabled_app_is_403(itsm, database, clock):
    with database.transaction() as connection:
        apps.disable(connection, "itsm", clock())

    answer = itsm.send("GET", "/api/v1/changes")

    assert (answer.status_code, answer.get_json()["error"]) == (403, "app_disabled")


def test_the_frontends_proxy_signature_does_not_stand_in_for_an_apps(backend):
    answer = backend.test_client().get("/api/v1/changes", headers=signed("GET", "/api/v1/changes"))

    assert (answer.status_code, answer.get_json()["error"]) == (401, "unsigned")


def test_a_wrong_spec_is_422_with_a_message_per_field(itsm):
    wrong = {**VPC, "spec": {"cidr_block": 16, "colour": "blue"}}

    answer = itsm.send("POST", "/api/v1/changes", wrong)

    assert answer.status_code == 422
    assert set(answer.get_json()["fields"]) == {"spec.cidr_block", "spec.colour"}


def test_the_listing_shows_only_the_callers_changes_newest_first(itsm, oa):
    for n in range(3):
        itsm.send("POST", "/api/v1/changes", {**VPC, "request_id": f"r{n}"})
    oa.send("POST", "/api/v1/changes", VPC)

    listed = itsm.send("GET", "/api/v1/changes").get_json()

    assert [c["request_id"] for c in listed["changes"]] == ["r2", "r1", "r0"]
    assert listed["next_cursor"] is None


def test_the_listing_pages_with_its_cursor(itsm):
    for n in range(3):
        itsm.send("POST", "/api/v1/changes", {**VPC, "request_id": f"r{n}"})

    first = itsm.send("GET", "/api/v1/changes?limit=2").get_json()
    second = itsm.send("GET", f"/api/v1/changes?limit=2&cursor={first['next_cursor']}").get_json()

    assert [c["request_id"] for c in first["changes"] + second["changes"]] == ["r2", "r1", "r0"]


def test_the_listing_filters_by_status_and_time(itsm, clock):
    itsm.send("POST", "/api/v1/changes", VPC)
    later = (clock() + timedelta(hours=1)).isoformat().replace("+00:00", "Z")

    assert itsm.send("GET", "/api/v1/changes?status=planned").get_json()["changes"]
    assert not itsm.send("GET", "/api/v1/changes?status=failed").get_json()["changes"]
    assert not itsm.send("GET", f"/api/v1/changes?since={later}").get_json()["changes"]


def test_bad_listing_filters_are_422_per_field(itsm):
    answer = itsm.send("GET", "/api/v1/changes?status=done&since=yesterday&limit=0")

    assert answer.status_code == 422
    assert set(answer.get_json()["fields"]) == {"status", "since", "limit"}


NEW_NETWORK = {
    "type": "ecs.instance",
    "request_id": "ITSM-43",
    "spec": {
        "vpc": "new",
        "zone_id": "cn-hangzhou-h",
        "image_id": "ubuntu_22_04_x64_20G_alibase_20240130.vhd",
        "instance_type": "ecs.g7.large",
    },
}


def test_a_wrong_network_field_is_named_as_the_caller_wrote_it(itsm):
    spec = {**NEW_NETWORK["spec"], "vpc_cidr_block": "10.0.0.0/33"}

    answer = itsm.send("POST", "/api/v1/changes", {**NEW_NETWORK, "spec": spec})

    assert answer.status_code == 422
    assert set(answer.get_json()["fields"]) == {"spec.vpc_cidr_block"}


def test_the_longest_instance_name_names_its_network_too(itsm):
    spec = {**NEW_NETWORK["spec"], "name": "w" * 128}

    answer = itsm.send("POST", "/api/v1/changes", {**NEW_NETWORK, "spec": spec})

    assert answer.status_code == 202, answer.get_json()
    names = [s for s in answer.get_json()["steps"]]
    assert len(names) == 4


def test_network_fields_without_a_new_vpc_are_refused_not_ignored(itsm):
    spec = {
        "image_id": "img",
        "instance_type": "ecs.g7.large",
        "vswitch_id": "vsw-1",
        "security_group_id": "sg-1",
        "zone_id": "cn-hangzhou-h",
    }

    answer = itsm.send("POST", "/api/v1/changes", {**NEW_NETWORK, "spec": spec})

    assert answer.status_code == 422
    assert set(answer.get_json()["fields"]) == {"spec.zone_id"}


def test_a_spec_spelling_out_its_defaults_is_the_same_request(itsm):
    first = itsm.send("POST", "/api/v1/changes", VPC).get_json()
    spelled = {**VPC, "spec": {**VPC["spec"], "name": None}}
    bare = {"type": "vpc", "request_id": "ITSM-44"}
    itsm.send("POST", "/api/v1/changes", bare)

    again = itsm.send("POST", "/api/v1/changes", spelled)
    also = itsm.send("POST", "/api/v1/changes", {**bare, "spec": {"cidr_block": "10.0.0.0/16"}})

    assert (again.status_code, again.get_json()["id"]) == (202, first["id"])
    assert also.status_code == 202 and also.headers["Idempotent-Replayed"] == "true"


def test_text_that_is_not_unicode_is_400_not_500(itsm):
    body = b'{"type": "vpc", "request_id": "s1", "spec": {"name": "a\\ud800"}}'
    headers = signed_headers(
        itsm.app.app_key,
        itsm.app.secret,
        "POST",
        "http://localhost/api/v1/changes",
        body,
        JSON,
        now_ms=int(itsm.clock().timestamp() * 1000),
    )

    answer = itsm.client.post("/api/v1/changes", data=body, headers=headers)

    assert answer.status_code == 400
    assert "Unicode" in answer.get_json()["message"]["en"]


def test_a_last_page_that_is_exactly_full_says_there_is_no_more(itsm):
    for n in range(2):
        itsm.send("POST", "/api/v1/changes", {**VPC, "request_id": f"r{n}"})

    listed = itsm.send("GET", "/api/v1/changes?limit=2").get_json()

    assert len(listed["changes"]) == 2 and listed["next_cursor"] is None


def test_the_cursor_is_the_last_change_shown_and_only_the_callers(itsm, oa):
    for n in range(2):
        itsm.send("POST", "/api/v1/changes", {**VPC, "request_id": f"r{n}"})
    cursor = itsm.send("GET", "/api/v1/changes?limit=1").get_json()["next_cursor"]

    assert cursor.startswith("chg-")
    assert oa.send("GET", f"/api/v1/changes?cursor={cursor}").status_code == 422
    assert itsm.send("GET", "/api/v1/changes?cursor=9223372036854775808").status_code == 422


@pytest.mark.parametrize(
    "query", ["since=0001-01-01T00:00:00%2B14:00", "until=9999-12-31T23:59:59-14:00"]
)
def test_times_no_column_holds_are_422(itsm, query):
    answer = itsm.send("GET", f"/api/v1/changes?{query}")

    assert answer.status_code == 422
