"""The HTTP callback function: DingTalk's encrypted pushes, verified, exactly once in effect."""

import dataclasses
import json
from datetime import datetime, timezone

import pytest
import requests

from approval.app import create_app as create_approval
from backend.exceptions import ConfigError
from sandbox import callback_crypto as dingtalk
from tests.integration.conftest import DECISION_JOBS, FakeClock, LiveServer

TOKEN, AES_KEY, APP_KEY = (
    "dingpass2026tok",
    "dP7s3kQ9vX2mL8nR4tY6wZ1aB5cD0eF3gH7jK9pQ2rS",
    "dingpassappkey000001",
)
VECTOR_A = (  # ../shared/dingtalk.md §6.4 (a), as DingTalk would send it
    "signature=d6a32b506c6a8d648543c1d22b8101aa47dc96a0&msg_signature=d6a32b506c6a8d648543c1d22b8101aa47dc96a0"
    "&timestamp=1779512345678&nonce=Ab3dE5gH",
    "w8LDnYiEnYsLcf3xPkgdbIYTcjpK9oTwM0kZlgbkpTBJDn7EATclpDTNbuz70G0gp9PQrhMLnHPYl+KA5MoU7BkwC1CmLwAyL7hTVCGD7+MnyhVE66qKNTYunLYowu0qM29EjLYf119wBKKGfCxcDkCKze0KnQVXmJysUrfuOEbjmednxFWwsTfL/q2afyZZrLix4CpDay6LQ+H8+52hNjuUIhjT4RmzzWHuAgh4tT7V2CO5y6VMkfGZ8X5gmX0jAx0WxQZ6QsU8WioVehgUgPUR5Z8iNFjOIcnguUKSPtKusUwHj2rtWC8zhr0rbUjFmnSl8uQOjLUAzpWIH8NbfX4G3gjin0GHg8bYefGYzDdZIxfRyuuX+AsrN7OJ5EXgXE3UeM8HrEH9IDMa9mPWsv7304xBbBTM2o1wLVjURb8Ch+03fanV8Vah3RrehAKHgcsquShPBvbmjgbk2eEH8Bbq4a1kB11uLLvZ0vBDRIQ4DhgbX4bR3lQHrpjgWgyy",
)
AGREE = {
    "EventType": "bpms_instance_change",
    "processInstanceId": "pi-0001",
    "type": "finish",
    "result": "agree",
    "title": "许可申请",
    "processCode": "PROC-DINGPASS-0001",
}


@pytest.fixture
def approval(config, database, clock):
    clock.now = datetime.fromtimestamp(1779512345, timezone.utc)
    settings = dataclasses.replace(
        config,
        dingtalk_callback_token=TOKEN,
        dingtalk_callback_aes_key=AES_KEY,
        dingtalk_app_key=APP_KEY,
    )
    app = create_approval(settings, clock=clock)
    yield app.test_client()
    app.extensions["database"].dispose()


counter = iter(range(10**6))


def push(
    client,
    message: dict | str,
    *,
    owner=APP_KEY,
    timestamp=None,
    nonce=None,
    token=TOKEN,
    tamper=False,
):
    """POST a push built the way DingTalk builds it (the sandbox's own crypto)."""
    query, body = sealed(message, owner=owner, timestamp=timestamp, nonce=nonce, token=token)
    if tamper:  # changed in flight, after DingTalk signed it
        encrypted = json.loads(body)["encrypt"]
        encrypted = encrypted[:-30] + ("A" if encrypted[-30] != "A" else "B") + encrypted[-29:]
        body = json.dumps({"encrypt": encrypted}).encode()
    return client.post(
        "/dingtalk/callback", query_string=query, data=body, content_type="application/json"
    )


def sealed(
    message: dict | str, *, owner=APP_KEY, timestamp=None, nonce=None, token=TOKEN
) -> tuple[dict[str, str], bytes]:
    """The query and body of a push, encrypted and signed as DingTalk does it."""
    plain = message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)
    encrypted = dingtalk.seal(AES_KEY, owner, plain)
    stamp, nonce = timestamp or "1779512345000", nonce or f"n{next(counter):07d}"
    signature = dingtalk.msg_signature(token, stamp, nonce, encrypted)
    query = {"msg_signature": signature, "timestamp": stamp, "nonce": nonce}
    return query, json.dumps({"encrypt": encrypted}).encode()


def assert_success_reply(answer):
    reply = answer.get_json()
    assert answer.status_code == 200, reply
    assert (
        dingtalk.msg_signature(TOKEN, reply["timeStamp"], reply["nonce"], reply["encrypt"])
        == reply["msg_signature"]
    )
    assert dingtalk.unseal(AES_KEY, APP_KEY, reply["encrypt"]) == "success"


def test_the_check_url_handshake_gets_encrypted_success(approval):
    assert_success_reply(push(approval, {"EventType": "check_url"}))


def test_the_worked_example_approves_the_application(approval, pending, api):
    query, encrypted = VECTOR_A
    assert_success_reply(approval.post(f"/dingtalk/callback?{query}", json={"encrypt": encrypted}))
    assert api.get(f"/applications/{pending}").get_json()["status"] == "approved"


def test_the_same_decision_pushed_ten_times_moves_the_application_once(
    approval, pending, api, database
):
    for _ in range(10):
        assert_success_reply(push(approval, AGREE))
    status = api.get(f"/applications/{pending}").get_json()
    assert [e["status"] for e in status["timeline"]].count("approved") == 1
    with database.transaction() as connection:
        assert connection.exec_driver_sql(DECISION_JOBS).scalar() == 1


def test_a_refusal_refuses(approval, pending, api):
    assert_success_reply(push(approval, {**AGREE, "result": "refuse"}))
    assert api.get(f"/applications/{pending}").get_json()["status"] == "refused"


def test_other_event_types_are_acknowledged_and_ignored(approval, pending, api):
    assert_success_reply(
        push(approval, {"EventType": "bpms_task_change", "processInstanceId": "pi-0001"})
    )
    assert api.get(f"/applications/{pending}").get_json()["status"] == "pending"


@pytest.mark.parametrize(
    ("kwargs", "status", "error"),
    [
        ({"token": "another-token"}, 403, "BadSignature"),
        ({"tamper": True}, 403, "BadSignature"),
        ({"owner": "ding0corp"}, 403, "WrongOwner"),
        ({"timestamp": "1779511000000"}, 403, "StaleTimestamp"),
        ({"timestamp": "1779512345"}, 200, None),  # seconds are understood too
        ({"timestamp": "soon"}, 400, "MalformedCallback"),
    ],
)
def test_refusals(approval, pending, kwargs, status, error):
    answer = push(approval, AGREE, **kwargs)
    assert answer.status_code == status
    if error:
        assert answer.get_json()["error"] == error


def test_a_replayed_request_is_refused(approval, pending):
    assert push(approval, AGREE, nonce="Ab3dE5gH").status_code == 200
    answer = push(approval, AGREE, nonce="Ab3dE5gH")
    assert answer.status_code == 409 and answer.get_json()["error"] == "ReplayedNonce"


@pytest.mark.parametrize(
    ("query", "body", "message"),
    [
        ("", b'{"encrypt": "x"}', "msg_signature, timestamp and nonce are required"),
        (
            "msg_signature=a&timestamp=1779512345000&nonce=n",
            b"not json",
            "the body is not JSON",
        ),
        (
            "msg_signature=a&timestamp=1779512345000&nonce=n",
            b'{"enc": "x"}',
            'must be {"encrypt"',
        ),
    ],
)
def test_a_malformed_request_is_a_400(approval, query, body, message):
    answer = approval.post(
        f"/dingtalk/callback?{query}", data=body, content_type="application/json"
    )
    assert answer.status_code == 400 and message in answer.get_json()["message"]


@pytest.mark.parametrize(
    ("plain", "message"),
    [
        ("not json at all", "not JSON"),
        (
            '{"EventType": "bpms_instance_change", "type": "finish"}',
            "without processInstanceId",
        ),
    ],
)
def test_a_plaintext_that_is_not_an_event_is_a_400(approval, plain, message):
    answer = push(approval, plain)
    assert answer.status_code == 400 and message in answer.get_json()["message"]


def test_without_callback_settings_the_function_says_what_to_set(config):
    with pytest.raises(ConfigError, match="DINGTALK_CALLBACK_TOKEN, DINGTALK_CALLBACK_AES_KEY"):
        create_approval(config, clock=FakeClock())


def recorded(database) -> tuple[int, int]:
    """How many approval events and callback nonces are stored."""
    with database.transaction() as connection:
        events = connection.exec_driver_sql("select count(*) from approval_events").scalar()
        seen = connection.exec_driver_sql("select count(*) from callback_nonces").scalar()
    return events, seen


def test_a_timestamp_of_non_ascii_digits_is_a_400(approval, pending):
    answer = push(approval, AGREE, timestamp="²")
    assert answer.status_code == 400 and answer.get_json()["error"] == "MalformedCallback"
    assert "is not a number" in answer.get_json()["message"]


def test_a_body_nested_5000_deep_is_a_400(approval):
    query = "msg_signature=a&timestamp=1779512345000&nonce=n"
    answer = approval.post(
        f"/dingtalk/callback?{query}",
        data=b"[" * 5000 + b"]" * 5000,
        content_type="application/json",
    )
    assert answer.status_code == 400 and "nests too deeply" in answer.get_json()["message"]


@pytest.mark.parametrize(
    ("field", "width"), [("processInstanceId", 64), ("type", 16), ("result", 16)]
)
def test_a_field_longer_than_its_column_is_refused_logged_and_nothing_stored(
    approval, pending, database, caplog, field, width
):
    answer = push(approval, {**AGREE, field: "x" * (width + 1)})
    reason = f"{field} is {width + 1} characters; at most {width} can be recorded"
    assert answer.status_code == 400 and answer.get_json()["error"] == "MalformedCallback"
    assert answer.get_json()["message"] == reason
    assert f"callback refused (MalformedCallback): {reason}" in caplog.messages
    assert recorded(database) == (0, 0)


def test_a_nonce_too_long_to_record_is_refused_and_nothing_stored(approval, pending, database):
    answer = push(approval, AGREE, nonce="n" * 90)  # "1779512345000:" + 90 > 100
    assert answer.status_code == 400 and "nonce is 90 characters" in answer.get_json()["message"]
    assert recorded(database) == (0, 0)


def test_a_lone_surrogate_in_the_instance_id_is_refused(approval, pending, database):
    answer = push(approval, json.dumps({**AGREE, "processInstanceId": "pi-\ud800"}))
    assert answer.status_code == 400 and "not valid Unicode" in answer.get_json()["message"]
    assert recorded(database) == (0, 0)


def test_a_lone_surrogate_elsewhere_is_kept_escaped(approval, pending, api, database):
    assert_success_reply(push(approval, json.dumps({**AGREE, "title": "许可\udc80"})))
    assert api.get(f"/applications/{pending}").get_json()["status"] == "approved"
    with database.transaction() as connection:
        payload = connection.exec_driver_sql("select payload from approval_events").scalar()
    assert json.loads(payload)["title"] == "许可\udc80"


def test_a_chunked_body_over_16_kb_is_413(approval, pending, database):
    server = LiveServer(approval.application)
    query, body = sealed(AGREE)
    answer = requests.post(
        f"{server.url}/dingtalk/callback",
        params=query,
        data=iter([body, b" " * 20_000]),  # no length given: Transfer-Encoding: chunked
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    server.stop()
    assert answer.status_code == 413 and answer.json()["error"] == "request_entity_too_large"
    assert recorded(database) == (0, 0)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/nothing", 404), ("GET", "/dingtalk/callback", 405), ("PUT", "/healthz", 405)],
)
def test_http_errors_are_json_not_html_pages(approval, method, path, status):
    answer = approval.open(path, method=method)
    assert answer.status_code == status and answer.is_json and answer.get_json()["message"]
    if status == 405:
        assert "Allow" in answer.headers


def test_a_body_declared_over_16_kb_is_a_json_413(approval):
    answer = approval.post("/dingtalk/callback", data=b" " * (16 * 1024 + 1))
    assert answer.status_code == 413 and answer.is_json


def test_an_unexpected_failure_is_a_json_500(config, database, clock, pending):
    def failing_kick():
        raise RuntimeError("the runner could not be started")

    app = create_approval(
        dataclasses.replace(
            config,
            dingtalk_callback_token=TOKEN,
            dingtalk_callback_aes_key=AES_KEY,
            dingtalk_app_key=APP_KEY,
        ),
        clock=clock,
        kick=failing_kick,
    )
    clock.now = datetime.fromtimestamp(1779512345, timezone.utc)
    answer = push(app.test_client(), AGREE)
    app.extensions["database"].dispose()
    assert answer.status_code == 500 and answer.get_json()["error"] == "internal_error"


def test_a_push_that_failed_is_taken_when_sent_again_as_it_was(
    config, database, clock, pending, api
):
    """DingTalk's retry may carry the first attempt's timestamp and nonce: its nonce is forgotten
    when the push fails, so the retry is no replay."""
    kicks: list[int] = []

    def kick_failing_once():
        kicks.append(1)
        if len(kicks) == 1:
            raise RuntimeError("the runner could not be started")

    settings = dataclasses.replace(
        config,
        dingtalk_callback_token=TOKEN,
        dingtalk_callback_aes_key=AES_KEY,
        dingtalk_app_key=APP_KEY,
    )
    app = create_approval(settings, clock=clock, kick=kick_failing_once)
    clock.now = datetime.fromtimestamp(1779512345, timezone.utc)
    query, body = sealed(AGREE)
    client = app.test_client()
    first = client.post(
        "/dingtalk/callback", query_string=query, data=body, content_type="application/json"
    )
    again = client.post(
        "/dingtalk/callback", query_string=query, data=body, content_type="application/json"
    )
    app.extensions["database"].dispose()
    assert first.status_code == 500
    assert_success_reply(again)
    assert api.get(f"/applications/{pending}").get_json()["status"] == "approved"
    with database.transaction() as connection:
        assert connection.exec_driver_sql(DECISION_JOBS).scalar() == 1
