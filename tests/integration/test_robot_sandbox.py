"""The mail sandbox's group robots: DingTalk's and WeCom's webhooks, as their servers answer."""

import pytest
import requests

from sandbox.mail import MailSandbox
from sandbox.robots import UnknownRobotError

VECTOR_SECRET = "this is secret"
VECTOR_TIMESTAMP = "1700000000000"
VECTOR_SIGN = "sSFWELbV2YwjdDQhWZwTcWlX5BWUx5J6TPpsZmuPii0%3D"
"""robots.md §1.2's first test vector, as it goes in the query string."""
SECOND_SECRET = "SECb0f8c7d2e3a4b5c6d7e8f90123456789abcdef0123456789abcdef01234567"
SECOND_TIMESTAMP = "1704067200000"
SECOND_SIGN = "cxlDhkOlKFao4fEX78Y%2B9tHZeIaDYE%2BsBpTd7SJNYhY%3D"
"""The second vector: its signature has '+', which must arrive percent-encoded."""
TEXT = {"msgtype": "text", "text": {"content": "告警 disk full"}}


class Seconds:
    """A clock in seconds since the epoch that the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Seconds:
    return Seconds(int(VECTOR_TIMESTAMP) / 1000 + 5)


@pytest.fixture
def sandbox(clock):
    server = MailSandbox(clock=clock).start()
    yield server
    server.stop()


def dingtalk(sandbox: MailSandbox, query: str, body: object = TEXT) -> dict:
    answer = requests.post(f"{sandbox.url}/robot/send?{query}", json=body, timeout=5)
    assert answer.status_code == 200
    return answer.json()


def wecom(sandbox: MailSandbox, key: str, body: object = TEXT) -> dict:
    answer = requests.post(f"{sandbox.url}/cgi-bin/webhook/send?key={key}", json=body, timeout=5)
    assert answer.status_code == 200
    return answer.json()


def signed(token: str, timestamp: str = VECTOR_TIMESTAMP, sign: str = VECTOR_SIGN) -> str:
    return f"access_token={token}&timestamp={timestamp}&sign={sign}"


OK = {"errcode": 0, "errmsg": "ok"}
SIGN_NOT_MATCH = {"errcode": 310000, "errmsg": "sign not match"}


def test_a_request_signed_as_the_doc_says_is_accepted(sandbox):
    sandbox.robots.add_dingtalk("T", secret=VECTOR_SECRET)
    assert dingtalk(sandbox, signed("T")) == OK


def test_a_signature_with_a_plus_sign_is_accepted_when_percent_encoded(sandbox, clock):
    clock.now = int(SECOND_TIMESTAMP) / 1000
    sandbox.robots.add_dingtalk("T", secret=SECOND_SECRET)
    assert dingtalk(sandbox, signed("T", SECOND_TIMESTAMP, SECOND_SIGN)) == OK


def test_a_wrong_sign_is_refused(sandbox):
    sandbox.robots.add_dingtalk("T", secret="another secret")
    assert dingtalk(sandbox, signed("T")) == SIGN_NOT_MATCH


def test_a_signed_robot_refuses_a_request_without_timestamp_and_sign(sandbox):
    sandbox.robots.add_dingtalk("T", secret=VECTOR_SECRET)
    assert dingtalk(sandbox, "access_token=T") == SIGN_NOT_MATCH


@pytest.mark.parametrize(
    ("skew", "answer"),
    [
        (3600.0, OK),
        (3600.001, {"errcode": 310000, "errmsg": "invalid timestamp"}),
        (-3600.001, {"errcode": 310000, "errmsg": "invalid timestamp"}),
    ],
)
def test_the_timestamp_must_be_within_an_hour_of_the_robots_clock(sandbox, clock, skew, answer):
    clock.now = int(VECTOR_TIMESTAMP) / 1000 + skew
    sandbox.robots.add_dingtalk("T", secret=VECTOR_SECRET)
    assert dingtalk(sandbox, signed("T")) == answer


def test_a_message_without_the_keyword_is_refused(sandbox):
    sandbox.robots.add_dingtalk("T", keyword="dingpass")
    assert dingtalk(sandbox, "access_token=T") == {
        "errcode": 310000,
        "errmsg": "keywords not in content",
    }


def test_a_markdown_message_with_the_keyword_in_its_text_is_accepted(sandbox):
    sandbox.robots.add_dingtalk("T", keyword="dingpass")
    body = {"msgtype": "markdown", "markdown": {"title": "t", "text": "### dingpass 告警"}}
    assert dingtalk(sandbox, "access_token=T", body) == OK


def test_the_21st_message_in_a_minute_throttles_a_dingtalk_robot_for_ten_minutes(sandbox, clock):
    sandbox.robots.add_dingtalk("T")
    assert [dingtalk(sandbox, "access_token=T") for _ in range(20)] == [OK] * 20
    too_fast = {"errcode": 410100, "errmsg": "发送速度太快而限流"}
    assert dingtalk(sandbox, "access_token=T") == too_fast
    clock.advance(599)
    assert dingtalk(sandbox, "access_token=T") == too_fast
    clock.advance(1)
    assert dingtalk(sandbox, "access_token=T") == OK


def test_a_dingtalk_robots_minute_slides(sandbox, clock):
    sandbox.robots.add_dingtalk("T")
    for _ in range(20):
        dingtalk(sandbox, "access_token=T")
        clock.advance(3)
    assert dingtalk(sandbox, "access_token=T") == OK


def test_the_21st_message_in_a_minute_to_a_wecom_robot_is_refused_until_the_minute_passes(
    sandbox, clock
):
    sandbox.robots.add_wecom("K")
    assert [wecom(sandbox, "K") for _ in range(20)] == [OK] * 20
    assert wecom(sandbox, "K") == {"errcode": 45009, "errmsg": "api freq out of limit"}
    clock.advance(60)
    assert wecom(sandbox, "K") == OK


def test_a_robot_switched_to_refuse_refuses_that_many_messages_then_sends(sandbox):
    sandbox.robots.add_wecom("K")
    sandbox.robots.refuse("K", -1, "系统繁忙", times=2)
    answers = [wecom(sandbox, "K")["errcode"] for _ in range(3)]
    assert answers == [-1, -1, 0]


def test_a_robot_is_switched_to_refuse_over_http(sandbox):
    sandbox.robots.add_dingtalk("T")
    switch = {"robot": "T", "errcode": 400102, "errmsg": "机器人已停用"}
    assert requests.post(f"{sandbox.url}/sandbox/robots/refuse", json=switch, timeout=5).ok
    assert dingtalk(sandbox, "access_token=T") == {"errcode": 400102, "errmsg": "机器人已停用"}


def test_switching_an_unknown_robot_to_refuse_says_which(sandbox):
    with pytest.raises(UnknownRobotError, match="'nobody'"):
        sandbox.robots.refuse("nobody", -1, "系统繁忙")


def test_robots_are_registered_over_http(sandbox):
    robots = [
        {"kind": "dingtalk", "token": "T", "secret": VECTOR_SECRET, "name": "运维群"},
        {"kind": "wecom", "key": "K", "name": "值班群"},
    ]
    for robot in robots:
        assert requests.post(f"{sandbox.url}/sandbox/robots", json=robot, timeout=5).ok
    assert dingtalk(sandbox, signed("T")) == OK
    assert wecom(sandbox, "K") == OK
    assert [m["robot"] for m in sandbox.robots.messages()] == ["运维群", "值班群"]


def test_an_unknown_token_gets_dingtalks_answer(sandbox):
    assert dingtalk(sandbox, "access_token=nope") == {
        "errcode": 400101,
        "errmsg": "access_token不存在",
    }


def test_an_unknown_key_gets_wecoms_answer(sandbox):
    assert wecom(sandbox, "nope") == {"errcode": 93000, "errmsg": "invalid webhook url"}


def test_a_dingtalk_message_that_is_not_json_is_refused_by_content_type(sandbox):
    sandbox.robots.add_dingtalk("T")
    answer = requests.post(f"{sandbox.url}/robot/send?access_token=T", data="hi", timeout=5)
    assert answer.json() == {"errcode": 43004, "errmsg": "无效的HTTP HEADER Content-Type"}


def test_a_dingtalk_message_of_an_unknown_type_is_refused(sandbox):
    sandbox.robots.add_dingtalk("T")
    body = {"msgtype": "image", "image": {"url": "x"}}
    assert dingtalk(sandbox, "access_token=T", body) == {
        "errcode": 400105,
        "errmsg": "不支持的消息类型",
    }


def test_a_wecom_message_without_its_part_is_refused(sandbox):
    sandbox.robots.add_wecom("K")
    assert wecom(sandbox, "K", {"msgtype": "text"}) == {
        "errcode": 40008,
        "errmsg": "invalid message type",
    }


def test_every_attempt_is_listed_with_its_answer(sandbox, clock):
    sandbox.robots.add_dingtalk("T", keyword="dingpass", name="运维群")
    body = {
        "msgtype": "markdown",
        "markdown": {"title": "审批", "text": "#### dingpass @150"},
        "at": {"atMobiles": ["150"], "isAtAll": False},
    }
    dingtalk(sandbox, "access_token=T", body)
    dingtalk(sandbox, "access_token=T")
    first, second = sandbox.robots.messages()
    assert first == {
        "robot": "运维群",
        "kind": "dingtalk",
        "msgtype": "markdown",
        "title": "审批",
        "text": "#### dingpass @150",
        "at": {"atMobiles": ["150"], "isAtAll": False},
        "at_ms": int(clock.now * 1000),
        "answered": OK,
    }
    assert (second["text"], second["answered"]["errcode"]) == ("告警 disk full", 310000)


def test_robots_json_is_the_messages_list(sandbox):
    sandbox.robots.add_wecom("K")
    body = {"msgtype": "text", "text": {"content": "hi", "mentioned_list": ["@all"]}}
    wecom(sandbox, "K", body)
    listed = requests.get(f"{sandbox.url}/robots.json", timeout=5).json()
    assert listed == sandbox.robots.messages()
    assert listed[0]["at"] == {"mentioned_list": ["@all"]}


def inbox(sandbox: MailSandbox) -> str:
    return requests.get(sandbox.url, timeout=5).text


def test_the_inbox_shows_a_markdown_message_rendered(sandbox):
    sandbox.robots.add_dingtalk("T", name="运维群")
    text = "#### 杭州天气\n> 9度\n- **一**\n- [天气](https://www.dingtalk.com)"
    body = {"msgtype": "markdown", "markdown": {"title": "天气", "text": text}}
    dingtalk(sandbox, "access_token=T", body)
    page = inbox(sandbox)
    assert "<h4>杭州天气</h4><blockquote>9度</blockquote>" in page
    assert '<ul><li><strong>一</strong></li><li><a href="https://www.dingtalk.com"' in page
    assert "运维群" in page


def test_a_script_in_a_message_is_shown_as_text(sandbox):
    sandbox.robots.add_dingtalk("T")
    text = "<script>alert(1)</script> [x](javascript:alert(1))"
    dingtalk(
        sandbox, "access_token=T", {"msgtype": "markdown", "markdown": {"title": "", "text": text}}
    )
    page = inbox(sandbox)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>" not in page
    assert "[x](javascript:alert(1))" in page and 'href="javascript' not in page


def test_the_inbox_shows_mentions(sandbox):
    sandbox.robots.add_dingtalk("T")
    dingtalk(sandbox, "access_token=T", {**TEXT, "at": {"atUserIds": ["manager42"]}})
    assert '<span class="mention">@manager42</span>' in inbox(sandbox)


def test_a_refused_message_is_not_on_the_page(sandbox):
    sandbox.robots.add_dingtalk("T", keyword="dingpass")
    dingtalk(sandbox, "access_token=T")
    assert "disk full" not in inbox(sandbox)


@pytest.mark.parametrize(
    "body",
    [
        {"msgtype": ["text"], "text": {"content": "hi"}},
        {"msgtype": "text", "text": {"content": "hi"}, "at": {"atMobiles": 5}},
        {"msgtype": "text", "text": {"content": "hi"}, "at": ["13800000000"]},
    ],
)
def test_a_malformed_dingtalk_body_gets_dingtalks_answer_and_the_page_still_shows(sandbox, body):
    sandbox.robots.add_dingtalk("T")
    assert dingtalk(sandbox, "access_token=T", body)["errcode"] != 0
    assert requests.get(f"{sandbox.url}/", timeout=5).status_code == 200


def test_a_sign_that_is_not_ascii_is_refused_as_not_matching(sandbox):
    sandbox.robots.add_dingtalk("T", secret=VECTOR_SECRET)
    assert dingtalk(sandbox, signed("T", sign="签名")) == SIGN_NOT_MATCH


def test_a_malformed_wecom_body_gets_wecoms_answer(sandbox):
    sandbox.robots.add_wecom("K")
    assert wecom(sandbox, "K", {"msgtype": ["markdown"]})["errcode"] == 40008
