"""API applications on SQLite and MariaDB: stored, and known by the requests they sign.

Requests are real werkzeug requests (what Flask hands a view), signed by tests/app_signing.py,
a client written apart from backend.apps.
"""

from dataclasses import replace
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from backend.apps import auth, errors, store
from backend.storage import nonces
from backend.storage.schema import callback_nonces
from tests.app_signing import signed_headers

URL = "http://127.0.0.1/api/changes?type=vpc&page=1"
JSON = "application/json; charset=utf-8"
FORM = "application/x-www-form-urlencoded"
BODY = b'{"type":"vpc","cidr":"10.0.0.0/8"}'


@pytest.fixture
def app(database, clock) -> store.ApiApp:
    """An application registered a day ago, with its secret."""
    with database.transaction() as connection:
        return store.create(connection, "itsm", clock() - timedelta(days=1))


def send(database, clock, headers, method="GET", url=URL, body=b""):
    """Authenticate a request as a view would: old nonces forgotten first, on their own."""
    with database.transaction() as connection:
        auth.forget_old_nonces(connection, clock())
    with database.transaction() as connection:
        return _authenticate(connection, clock, _request(method, url, headers, body))


def refusal(database, clock, headers, method="GET", url=URL, body=b"") -> errors.AppAuthError:
    """The error a request is refused with, its transaction committed all the same: whatever
    the refused call recorded (a nonce) stays recorded."""
    with database.transaction() as connection:
        with pytest.raises(errors.AppAuthError) as refused:
            _authenticate(connection, clock, _request(method, url, headers, body))
    return refused.value


def sign(app, clock, method="GET", url=URL, body=b"", **options):
    """Headers signing a request as ``app`` at the clock's time."""
    options.setdefault("now_ms", int(clock().timestamp() * 1000))
    return signed_headers(app.app_key, app.secret, method, url, body, **options)


def _request(method, url, headers, body) -> Request:
    parts = urlsplit(url)
    return EnvironBuilder(
        method=method,
        base_url=f"{parts.scheme}://{parts.netloc}",
        path=parts.path,
        query_string=parts.query,
        headers=headers,
        data=body,
    ).get_request()


def _authenticate(connection, clock, request: Request) -> store.ApiApp:
    return auth.authenticate(
        connection,
        request.method,
        request.path,
        request.query_string,
        request.headers,
        request.get_data(),
        clock(),
    )


def test_the_test_client_signs_requests_the_server_takes(database, clock, app):
    assert send(database, clock, sign(app, clock)) == replace(app, secret=None)


def test_the_app_given_back_holds_no_secret(database, clock, app):
    assert send(database, clock, sign(app, clock)).secret is None


def test_a_json_body_with_its_content_md5_is_taken(database, clock, app):
    headers = sign(app, clock, "POST", body=BODY, content_type=JSON)
    assert "Content-MD5" in headers
    assert send(database, clock, headers, method="POST", body=BODY).name == "itsm"


def test_a_form_body_is_signed_by_its_fields(database, clock, app):
    body = b"name=vpc+one&blank="
    headers = sign(app, clock, "POST", body=body, content_type=FORM)
    assert send(database, clock, headers, method="POST", body=body).name == "itsm"


def test_hmac_sha1_is_taken(database, clock, app):
    headers = sign(app, clock, signature_method="HmacSHA1")
    assert send(database, clock, headers).name == "itsm"


def test_signed_names_in_any_order_are_taken(database, clock, app):
    headers = sign(app, clock)
    names = headers["X-Ca-Signature-Headers"].split(",")
    headers["X-Ca-Signature-Headers"] = ",".join(reversed(names))
    assert send(database, clock, headers).name == "itsm"


def test_capitalised_names_as_the_old_demos_send_them_are_taken(database, clock, app):
    headers = sign(app, clock, lowercase=False, signature_method=None)
    assert headers["X-Ca-Signature-Headers"].startswith("X-Ca-Key,")
    assert send(database, clock, headers).name == "itsm"


def test_a_wrong_signature_is_refused_with_the_servers_string_to_sign(database, clock, app):
    headers = sign(app, clock, url=URL.replace("page=1", "page=2"))  # signed for another page
    refused = refusal(database, clock, headers)
    assert (refused.status, refused.code) == (401, "signature_mismatch")
    assert refused.headers["X-Ca-Error-Message"] == (
        "Invalid Signature, Server StringToSign:`GET#application/json###"
        f"#x-ca-key:{app.app_key}#x-ca-nonce:{headers['X-Ca-Nonce']}"
        f"#x-ca-signature-method:HmacSHA256#x-ca-timestamp:{headers['X-Ca-Timestamp']}"
        "#/api/changes?page=1&type=vpc`"
    )


def test_a_wrong_secret_is_refused(database, clock, app):
    refused = refusal(database, clock, sign(replace(app, secret="not-the-secret"), clock))
    assert refused.code == "signature_mismatch"


@pytest.mark.parametrize("minutes", [-16, 16])
def test_a_timestamp_outside_fifteen_minutes_is_refused(database, clock, app, minutes):
    stamp = int((clock() + timedelta(minutes=minutes)).timestamp() * 1000)
    refused = refusal(database, clock, sign(app, clock, now_ms=stamp))
    assert (refused.status, refused.code) == (401, "timestamp_expired")
    assert f"X-Ca-Timestamp {stamp} is more than 15 minutes" in refused.message["en"]


def test_a_timestamp_that_is_not_a_number_is_refused(database, clock, app):
    headers = sign(app, clock) | {"X-Ca-Timestamp": "2026-11-23T08:00:00Z"}
    refused = refusal(database, clock, headers)
    assert (refused.status, refused.code) == (400, "bad_timestamp")


def test_a_replayed_nonce_is_refused(database, clock, app):
    headers = sign(app, clock)
    send(database, clock, headers)
    refused = refusal(database, clock, headers)
    assert (refused.status, refused.code) == (401, "nonce_replayed")


def test_a_forged_request_does_not_spend_its_nonce(database, clock, app):
    forged = sign(replace(app, secret="guessed"), clock, nonce="n-1")
    assert refusal(database, clock, forged).code == "signature_mismatch"
    assert send(database, clock, sign(app, clock, nonce="n-1")).name == "itsm"


def test_a_nonce_is_remembered_while_its_request_could_be_fresh(database, clock, app):
    ahead = int((clock() + timedelta(minutes=15)).timestamp() * 1000)  # the edge of the window
    headers = sign(app, clock, now_ms=ahead)
    send(database, clock, headers)
    clock.advance(29 * 60)  # the timestamp is still fresh; old nonces are forgotten on send
    assert refusal(database, clock, headers).code == "nonce_replayed"


def test_the_callbacks_shorter_purge_leaves_the_apps_nonces_alone(database, clock, app):
    ahead = int((clock() + timedelta(minutes=15)).timestamp() * 1000)
    headers = sign(app, clock, now_ms=ahead)
    send(database, clock, headers)
    clock.advance(20 * 60)
    with database.transaction() as connection:  # as approval/callback.py purges its own
        nonces.forget_before(connection, clock() - timedelta(minutes=10))
    assert refusal(database, clock, headers).code == "nonce_replayed"


def test_the_apps_purge_leaves_the_callbacks_nonces_alone(database, clock, app):
    with database.transaction() as connection:
        nonces.first_sighting(connection, "1700000000000:callback-nonce", clock())
    clock.advance(60 * 60)
    with database.transaction() as connection:
        auth.forget_old_nonces(connection, clock())
        left = connection.execute(select(callback_nonces.c.key)).scalars().all()
    assert left == ["1700000000000:callback-nonce"]


def test_two_apps_may_use_the_same_nonce(database, clock, app):
    with database.transaction() as connection:
        other = store.create(connection, "oa", clock())
    send(database, clock, sign(app, clock, nonce="shared"))
    assert send(database, clock, sign(other, clock, nonce="shared")).name == "oa"


def test_a_nonce_too_long_for_the_table_is_recorded_hashed(database, clock, app):
    headers = sign(app, clock, nonce="n" * 300)
    send(database, clock, headers)
    assert refusal(database, clock, headers).code == "nonce_replayed"


def test_a_disabled_app_is_refused(database, clock, app):
    with database.transaction() as connection:
        store.disable(connection, "itsm", clock())
    refused = refusal(database, clock, sign(app, clock))
    assert (refused.status, refused.code) == (403, "app_disabled")


def test_an_enabled_app_is_taken_again(database, clock, app):
    with database.transaction() as connection:
        store.disable(connection, app.app_key, clock())
        store.enable(connection, app.app_key)
    assert send(database, clock, sign(app, clock)).name == "itsm"


def test_an_unknown_key_is_refused(database, clock, app):
    refused = refusal(database, clock, sign(replace(app, app_key="999999999"), clock))
    assert (refused.status, refused.code) == (401, "unknown_app")


def test_a_request_without_signature_headers_is_refused(database, clock, app):
    refused = refusal(database, clock, {"Accept": "application/json"})
    assert (refused.status, refused.code) == (401, "unsigned")
    assert "x-ca-key, x-ca-timestamp, x-ca-nonce" in refused.message["en"]


def test_a_body_that_is_not_its_content_md5s_is_refused(database, clock, app):
    headers = sign(app, clock, "POST", body=BODY, content_type=JSON)
    other = BODY.replace(b"10.0.0.0/8", b"0.0.0.0/0")
    refused = refusal(database, clock, headers, method="POST", body=other)
    assert (refused.status, refused.code) == (400, "content_md5_mismatch")


def test_a_body_without_content_md5_is_refused_as_its_signature_would_not_cover_it(
    database, clock, app
):
    headers = sign(app, clock, "POST", body=b"", content_type=JSON)  # signed, body not covered
    refused = refusal(database, clock, headers, method="POST", body=BODY)
    assert (refused.status, refused.code) == (400, "content_md5_missing")


def test_a_refused_body_does_not_spend_its_nonce(database, clock, app):
    headers = sign(app, clock, "POST", body=BODY, content_type=JSON)
    refusal(database, clock, headers, method="POST", body=b"{}")
    assert send(database, clock, headers, method="POST", body=BODY).name == "itsm"


def test_old_nonces_are_forgotten(database, clock, app):
    send(database, clock, sign(app, clock))
    clock.advance(31 * 60)  # past twice the window: no fresh request can carry it any more
    with database.transaction() as connection:
        auth.forget_old_nonces(connection, clock())
        assert connection.execute(select(callback_nonces)).all() == []


# The store


def test_a_new_app_has_a_key_of_nine_digits_and_a_secret_of_32_hex(app):
    assert len(app.app_key) == 9 and app.app_key.isdigit()
    assert len(app.secret) == 32 and int(app.secret, 16) >= 0


def test_an_apps_repr_never_shows_its_secret(app):
    assert app.secret not in repr(app) and app.secret not in str(app)


def test_by_key_has_the_secret_and_the_listing_has_none(database, app):
    with database.transaction() as connection:
        assert store.by_key(connection, app.app_key).secret == app.secret
        assert [found.secret for found in store.listing(connection)] == [None]


@pytest.mark.parametrize("name", ["itsm", "ITSM"])
def test_a_taken_name_is_refused_in_any_case(database, clock, app, name):
    with database.transaction() as connection, pytest.raises(errors.AppNameRefused) as refused:
        store.create(connection, name, clock())
    assert "already named" in str(refused.value)


@pytest.mark.parametrize("name", ["", "12345", "two words", "-dash", "x" * 65])
def test_a_name_that_cannot_be_one_is_refused(database, clock, name):
    with database.transaction() as connection, pytest.raises(errors.AppNameRefused) as refused:
        store.create(connection, name, clock())
    assert "cannot be an application's name" in str(refused.value)


def test_disabling_twice_keeps_the_first_moment(database, clock, app):
    with database.transaction() as connection:
        first = store.disable(connection, "itsm", clock())
        clock.advance(60)
        assert store.disable(connection, "ITSM", clock()).disabled_at == first.disabled_at


def test_an_unknown_name_is_no_such_app(database, clock):
    with database.transaction() as connection, pytest.raises(errors.NoSuchApp) as missing:
        store.disable(connection, "nobody", clock())
    assert "'nobody'" in str(missing.value) and "dingpass apps list" in str(missing.value)
