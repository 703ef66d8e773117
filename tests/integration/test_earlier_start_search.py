"""Searching DingTalk for what a start in doubt opened: narrowly, and never reading twice."""

from datetime import datetime, timedelta, timezone

import pytest

from backend.approvals.opener import find_started
from tests.integration.conftest import PROCESS_CODE, a_form

ORIGINATOR = "manager01"
NUMBER = "申请编号"


@pytest.fixture
def window(clock):
    clock.now = datetime.now(timezone.utc)  # DingTalk's list is by its own clock
    return (clock() - timedelta(minutes=1), clock() + timedelta(minutes=1))


def start(dingtalk, number: str) -> str:
    return dingtalk.start_instance(PROCESS_CODE, ORIGINATOR, -1, [(NUMBER, number)])


def search(dingtalk, number: str, window) -> str | None:
    return find_started(dingtalk, PROCESS_CODE, ORIGINATOR, (NUMBER, number), window)


def test_the_instance_carrying_the_number_is_found(dingtalk, window):
    start(dingtalk, "A-1")
    wanted = start(dingtalk, "A-2")
    assert search(dingtalk, "A-2", window) == wanted


def test_no_instance_is_read_twice_by_searches_one_after_another(dingtalk, sandbox, window):
    for number in ("A-1", "A-2", "A-3"):
        start(dingtalk, number)
    search(dingtalk, "A-2", window)
    assert search(dingtalk, "A-9", window) is None
    assert len(sandbox.state.answers("get")) == 3


def test_an_instance_an_application_already_has_is_not_read(
    approving_api, dingtalk, sandbox, window
):
    approving_api.post("/applications", a_form())  # opened and linked
    assert search(dingtalk, "A-9", window) is None
    assert sandbox.state.answers("get") == []
