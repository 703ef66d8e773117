"""The robot client's answers when the webhook is not a robot, and what a refusal says to fix."""

import pytest
import requests
import responses

from backend.clock import utc_now
from backend.robots.clients import Markdown, RobotClient
from backend.robots.errors import RobotRefused, RobotThrottled, RobotUnavailable
from tests.unit.test_robot_messages import DINGTALK, WECOM

MESSAGE = Markdown("t", "text")


@pytest.fixture
def webhook():
    with responses.RequestsMock() as mocked:
        yield mocked


def test_a_timeout_is_unavailable_and_retried(webhook):
    webhook.post(DINGTALK.webhook.split("?")[0], body=requests.Timeout())
    with pytest.raises(RobotUnavailable, match="did not answer \\(Timeout\\)"):
        RobotClient(utc_now).send(DINGTALK, MESSAGE)


def test_an_html_page_is_not_a_robots_answer(webhook):
    webhook.post(WECOM.webhook.split("?")[0], body="<html>proxy</html>", status=502)
    with pytest.raises(RobotUnavailable, match="HTTP 502 without a robot's JSON: is ROBOT_OPS_WEB"):
        RobotClient(utc_now).send(WECOM, MESSAGE)


def test_a_wrong_secret_names_the_variable_to_fix(webhook):
    robot = DINGTALK.__class__(**{**DINGTALK.__dict__, "secret": "SECx", "secret_env": "ROBOT_S"})
    webhook.post(
        DINGTALK.webhook.split("?")[0], json={"errcode": 310000, "errmsg": "sign not match"}
    )
    with pytest.raises(RobotRefused) as refused:
        RobotClient(utc_now).send(robot, MESSAGE)
    assert refused.value.errcode == 310000
    assert "ROBOT_S does not match the robot's 加签 secret" in str(refused.value)


def test_too_fast_is_a_throttle(webhook):
    webhook.post(WECOM.webhook.split("?")[0], json={"errcode": 45009, "errmsg": "api freq"})
    with pytest.raises(RobotThrottled):
        RobotClient(utc_now).send(WECOM, MESSAGE)


@pytest.mark.parametrize("errcode", [-1, "busy", None])
def test_a_busy_or_unreadable_answer_is_unavailable_and_retried(webhook, errcode):
    webhook.post(DINGTALK.webhook.split("?")[0], json={"errcode": errcode, "errmsg": "系统繁忙"})
    with pytest.raises(RobotUnavailable, match="tried again later"):
        RobotClient(utc_now).send(DINGTALK, MESSAGE)


def test_content_moderation_says_what_was_refused_and_what_to_do(webhook):
    webhook.post(
        DINGTALK.webhook.split("?")[0], json={"errcode": 430102, "errmsg": "含有不合适的文本"}
    )
    with pytest.raises(
        RobotRefused, match="content moderation refused the text \\(unsuitable text"
    ):
        RobotClient(utc_now).send(DINGTALK, MESSAGE)
