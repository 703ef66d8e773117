"""The applications API, on SQLite and on MariaDB."""

import json

import pytest

from backend.app import create_app
from tests.integration.conftest import a_form, signed


def test_a_valid_application_is_stored_and_numbered(api):
    answer = api.post("/applications", a_form())
    assert answer.status_code == 201
    body = answer.get_json()
    assert body["number"].startswith("A20261123-") and body["status"] == "submitted"
    assert body["status_url"] == f"https://apply.example.com/status/{body['token']}"


def test_the_status_shows_what_was_typed_and_a_timeline(api):
    token = api.post("/applications", a_form()).get_json()["token"]
    status = api.get(f"/applications/{token}").get_json()
    assert status["status"] == "submitted" and status["company"] == "杭州示例网络科技有限公司"
    assert status["product_names"]["zh"] == "Acme ERP 企业版"
    assert [event["status"] for event in status["timeline"]] == ["submitted"]
    assert status["timeline"][0]["at"] == "2026-11-23T08:00:00+00:00"


def test_the_status_carries_no_contact_details(api):
    token = api.post("/applications", a_form()).get_json()["token"]
    status = api.get(f"/applications/{token}").get_json()
    assert not {"email", "phone", "contact", "client_ip", "id", "feature_code"} & status.keys()


def test_markup_in_a_company_name_is_stored_and_returned_as_text(api):
    company = "<script>alert(1)</script> 示例"
    token = api.post("/applications", a_form(company=company)).get_json()["token"]
    answer = api.get(f"/applications/{token}")
    assert answer.get_json()["company"] == company
    assert answer.content_type == "application/json"


@pytest.mark.parametrize(
    ("changes", "field", "english"),
    [
        ({"email": "zhang@"}, "email", "Enter a valid email address."),
        ({"company": ""}, "company", "This field is required."),
        ({"company": "x" * 101}, "company", "At most 100 characters."),
        ({"product": "acme-os"}, "product", "Unknown product."),
        (
            {"feature_code": "nope"},
            "feature_code",
            "Should look like 9F2C-41AB-77D0-E5C3.",
        ),
        ({"quantity": 7}, "quantity", "Choose one of 1, 5, 10, 25, 50, 100."),
        ({"quantity": "5"}, "quantity", "Choose one of 1, 5, 10, 25, 50, 100."),
        ({"validity": "2y"}, "validity", "Choose an allowed validity."),
        ({"phone": "call me"}, "phone", "Enter a valid phone number."),
        (
            {"contact": "张\u0000三"},
            "contact",
            "Contains characters that are not allowed.",
        ),
        ({"admin": True}, "admin", "Unknown field."),
    ],
)
def test_a_bad_field_gets_its_own_message_in_both_languages(api, changes, field, english):
    answer = api.post("/applications", a_form(**changes))
    assert answer.status_code == 422
    fields = answer.get_json()["fields"]
    assert list(fields) == [field]
    assert fields[field]["en"] == english and fields[field]["zh"]


def test_every_bad_field_is_reported_at_once(api):
    answer = api.post("/applications", a_form(email="x", contact="", quantity=0))
    assert set(answer.get_json()["fields"]) == {"email", "contact", "quantity"}


def test_a_rejected_application_stores_nothing(api, database):
    api.post("/applications", a_form(email="x"))
    with database.transaction() as connection:
        assert connection.exec_driver_sql("select count(*) from applications").scalar() == 0


def test_a_body_that_is_not_a_json_object_is_a_bad_request(api):
    answer = api.post("/applications", ["not", "an", "object"])
    assert answer.status_code == 400
    assert answer.get_json()["message"]["en"] == "The request body must be a JSON object."


def test_an_unknown_token_is_not_found(api):
    answer = api.get("/applications/no-such-token-anywhere")
    assert answer.status_code == 404 and answer.get_json()["error"] == "not_found"


def test_one_ip_is_limited_with_retry_after(api, clock):
    for n in range(5):
        assert api.post("/applications", a_form(email=f"u{n}@example.com")).status_code == 201
    answer = api.post("/applications", a_form(email="u9@example.com"))
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "3600"
    clock.advance(3600)
    assert api.post("/applications", a_form(email="u9@example.com")).status_code == 201


def test_one_email_is_limited_whatever_the_ip(api):
    for n in range(3):
        assert api.post("/applications", a_form(), ip=f"198.51.100.{n}").status_code == 201
    answer = api.post("/applications", a_form(email="ZHANG@example.com"), ip="198.51.100.9")
    assert answer.status_code == 429
    assert "Too many applications" in answer.get_json()["message"]["en"]


def test_limits_hold_across_instances(config, database, clock, api):
    for n in range(5):
        assert api.post("/applications", a_form(email=f"u{n}@example.com")).status_code == 201
    other = create_app(config, clock=clock)  # another function instance, its own pool
    body = json.dumps(a_form(email="u9@example.com")).encode()
    answer = other.test_client().post(
        "/applications", data=body, headers=signed("POST", "/applications", body)
    )
    other.extensions["database"].dispose()
    assert answer.status_code == 429


def test_a_signed_body_nested_too_deep_is_a_400_not_a_500(api):
    deep = b"[" * 5000 + b"]" * 5000
    answer = api.client.post(
        "/applications", data=deep, headers=signed("POST", "/applications", deep)
    )
    assert answer.status_code == 400 and answer.get_json()["error"] == "bad_request"
