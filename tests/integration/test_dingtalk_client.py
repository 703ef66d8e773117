"""Our DingTalk client, through the official SDK, against the sandbox."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from backend.dingtalk.client import DingTalkClient
from backend.exceptions import (
    DingTalkRateLimited,
    DingTalkRejected,
    DingTalkUnavailable,
)
from tests.integration.conftest import APP_KEY, PROCESS_CODE, faults

FORM = [("申请编号", "A20261123-K7Q2M9"), ("公司名称", "杭州示例网络科技有限公司")]
NOT_JSON = (
    "DingTalk answered with a web page instead of JSON (a gateway's error page, or DingTalk "
    "throttling this server's IP address): try again in a few minutes"
)


def start(client) -> str:
    return client.start_instance(PROCESS_CODE, "manager01", -1, FORM)


def test_one_token_request_serves_many_calls(dingtalk, sandbox):
    ids = {start(dingtalk) for _ in range(5)}
    assert len(ids) == 5 and sandbox.state.token_requests == 1


class TurnsTaken:
    """A limiter that lets every call go at once, noting each turn among ``events``, and
    whether the SDK's client for it was built by then (its first use imports the SDK)."""

    def __init__(self, events: list[str], client: DingTalkClient) -> None:
        self.events, self.client = events, client

    def wait_turn(self, api: str) -> None:
        built = ("_oauth" if api == "token" else "_workflow") in vars(self.client)
        self.events.append(f"turn {api}" if built else f"turn {api}, its SDK client not built")


@contextmanager
def recorded(client: DingTalkClient, database) -> Iterator[list[str]]:
    """The client's turns and the database's statements, in order."""
    seen: list[str] = []
    client.limiter = TurnsTaken(seen, client)  # type: ignore[assignment]
    record = lambda *_args: seen.append("database")  # noqa: E731
    event.listen(database.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(database.engine, "before_cursor_execute", record)


def test_a_start_has_its_token_before_it_takes_its_turn(dingtalk, database):
    with recorded(dingtalk, database) as events:
        start(dingtalk)  # the token read, fetched and stored first: the turn right before sending
    assert "turn token" in events and events[-1] == "turn start"


def test_a_start_with_a_token_no_longer_accepted_renews_it_before_its_second_turn(
    dingtalk, sandbox, database
):
    start(dingtalk)
    sandbox.state.tokens.clear()  # DingTalk no longer accepts the one we hold
    with recorded(dingtalk, database) as events:
        start(dingtalk)
    turns = [event for event in events if event.startswith("turn")]
    assert turns == ["turn start", "turn token", "turn start"] and events[-1] == "turn start"


def test_a_read_has_its_token_before_it_takes_its_turn(dingtalk, sandbox, database, clock):
    instance = start(dingtalk)
    reader = DingTalkClient(sandbox.url, APP_KEY, "sandbox-app-secret", database, clock)
    with recorded(reader, database) as events:  # a new process: the token is in the database
        reader.get_instance(instance)
    assert events[0] == "database" and events[-1] == "turn get"


def test_the_token_is_shared_through_the_database(dingtalk, sandbox, database, clock):
    start(dingtalk)
    another_instance = DingTalkClient(sandbox.url, APP_KEY, "sandbox-app-secret", database, clock)
    start(another_instance)
    assert sandbox.state.token_requests == 1


def test_a_token_is_renewed_before_it_expires(dingtalk, sandbox, clock):
    start(dingtalk)
    clock.advance(7200 - 200)  # inside the five-minute margin
    start(dingtalk)
    assert sandbox.state.token_requests == 2


def test_a_token_dingtalk_no_longer_accepts_is_renewed_once(dingtalk, sandbox):
    start(dingtalk)
    sandbox.state.tokens.clear()
    start(dingtalk)
    assert sandbox.state.token_requests == 2


def test_the_instance_carries_the_form_as_given(dingtalk, sandbox):
    instance = sandbox.state.instances[start(dingtalk)]
    assert [(v["name"], v["value"]) for v in instance.form] == FORM
    assert (instance.process_code, instance.originator) == (PROCESS_CODE, "manager01")


def test_rate_limited_then_success_on_retry(dingtalk, sandbox):
    dingtalk.access_token()
    faults(sandbox, rate_limit=1, rate_limit_api="start")
    with pytest.raises(DingTalkRateLimited) as caught:
        start(dingtalk)
    assert caught.value.code == "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"
    assert start(dingtalk)


def test_a_server_error_is_unavailable(dingtalk, sandbox):
    dingtalk.access_token()
    faults(sandbox, server_error=1, server_error_api="start")
    with pytest.raises(DingTalkUnavailable):
        start(dingtalk)


def test_a_wrong_secret_is_rejected_with_dingtalks_code(sandbox, database, clock):
    client = DingTalkClient(sandbox.url, APP_KEY, "wrong", database, clock)
    with pytest.raises(DingTalkRejected) as caught:
        start(client)
    assert caught.value.code == "invalidClientIdOrSecret" and caught.value.status == 400


def test_an_unknown_process_code_is_rejected(dingtalk):
    with pytest.raises(DingTalkRejected) as caught:
        dingtalk.start_instance("PROC-NOPE", "manager01", -1, FORM)
    assert caught.value.code == "processCodeError"


def test_a_start_without_a_department_is_refused_in_dingtalks_words(dingtalk, sandbox):
    with pytest.raises(DingTalkRejected) as caught:
        dingtalk.start_instance(PROCESS_CODE, "manager01", None, FORM)
    assert (caught.value.code, caught.value.status) == ("processInstanceInvalidParameter", 400)
    assert sandbox.state.instances == {}


def test_a_component_the_form_does_not_have_is_refused_by_name(dingtalk, sandbox):
    with pytest.raises(DingTalkRejected) as caught:
        dingtalk.start_instance(PROCESS_CODE, "manager01", -1, [*FORM, ("颜色", "红")])
    assert caught.value.code == "formConverterError" and "失败控件：颜色" in str(caught.value)
    assert sandbox.state.instances == {}


@pytest.mark.parametrize("status", [502, 429])
def test_an_error_page_that_is_not_json_is_unavailable_in_plain_words(dingtalk, sandbox, status):
    dingtalk.access_token()
    faults(sandbox, html_error=1, html_error_status=status, html_error_api="start")
    with pytest.raises(DingTalkUnavailable) as caught:
        start(dingtalk)
    assert sandbox.state.answers("start") == [status]
    assert str(caught.value) == NOT_JSON and caught.value.in_doubt


def test_dingtalk_down_is_unavailable(database, clock):
    client = DingTalkClient("http://127.0.0.1:9", APP_KEY, "s", database, clock)
    with pytest.raises(DingTalkUnavailable):
        start(client)


def test_an_instance_is_read_back_as_it_stands(dingtalk, sandbox):
    instance_id = start(dingtalk)
    assert dingtalk.get_instance(instance_id).status == "RUNNING"
    sandbox.state.decide(instance_id, "approve")
    state = dingtalk.get_instance(instance_id)
    assert (state.status, state.result) == ("COMPLETED", "agree")


def test_config_check_reports_a_wrong_secret_in_dingtalks_words(run_cli, sandbox):
    env = {
        "DINGTALK_APP_KEY": APP_KEY,
        "DINGTALK_APP_SECRET": "s3cr3t-but-wrong",
        "DINGTALK_PROCESS_CODE": PROCESS_CODE,
        "DINGTALK_ORIGINATOR_USER_ID": "manager01",
        "DINGTALK_API_BASE": sandbox.url,
    }
    result = run_cli("config", "check", env=env)
    assert result.exit_code == 1
    assert "FAIL  dingtalk: DingTalk refused the app key and secret" in result.output
    assert "invalidClientIdOrSecret" in result.output or "无效的clientId" in result.output
    assert "s3cr3t-but-wrong" not in result.output


def test_config_check_passes_with_the_right_secret(run_cli, sandbox):
    env = {
        "DINGTALK_APP_KEY": APP_KEY,
        "DINGTALK_APP_SECRET": "sandbox-app-secret",
        "DINGTALK_PROCESS_CODE": PROCESS_CODE,
        "DINGTALK_ORIGINATOR_USER_ID": "manager01",
        "DINGTALK_API_BASE": sandbox.url,
    }
    result = run_cli("config", "check", env=env)
    assert f"ok    dingtalk: app {APP_KEY} gets an access token" in result.output


def test_in_production_a_missing_process_code_is_named(run_cli):
    result = run_cli("config", "check", env={"DINGPASS_ENV": "production", "DINGTALK_APP_KEY": "k"})
    assert result.exit_code == 1
    assert (
        "FAIL  dingtalk: set DINGTALK_APP_SECRET, DINGTALK_PROCESS_CODE, "
        "DINGTALK_ORIGINATOR_USER_ID" in result.output
    )


def test_listing_instances_as_one_originator_leaves_out_the_others(dingtalk, sandbox):
    from datetime import datetime, timezone

    mine = dingtalk.start_instance(PROCESS_CODE, "manager01", 1, FORM)
    dingtalk.start_instance(PROCESS_CODE, "someone-else", 1, FORM)
    since = datetime.now(timezone.utc).replace(year=2020)
    assert dingtalk.instance_ids(PROCESS_CODE, since, "manager01") == [mine]
    assert len(dingtalk.instance_ids(PROCESS_CODE, since)) == 2
