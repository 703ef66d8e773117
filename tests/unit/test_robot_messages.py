"""What robots say: the event in the robot's language, mentions where action is needed."""

import dataclasses

from backend.robots.config import Mention, Robot
from backend.robots.events import RobotEvent
from backend.robots.messages import digest, fits, render

DINGTALK = Robot(
    name="ops",
    kind="dingtalk",
    events=frozenset(RobotEvent),
    webhook="https://oapi.dingtalk.com/robot/send?access_token=T",
    webhook_env="ROBOT_OPS_WEBHOOK",
    mention=Mention(mobiles=("13800000000",), user_ids=("manager1",)),
)
WECOM = dataclasses.replace(DINGTALK, kind="wecom", language="en")
APPLICATION = {
    "number": "A20261123-ABCDEF",
    "product_name": "Acme ERP",
    "product_names": {"zh": "Acme ERP 企业版", "en": "Acme ERP Enterprise"},
    "quantity": 5,
    "validity": "1y",
    "company": "杭州示例",
    "contact": "张三",
    "email": "z@example.com",
    "phone": "",
    "feature_code": "9F2C",
    "note": "",
    "status": "pending",
    "instance_id": "pi-1",
    "status_url": "https://apply.example.com/status/tok",
}


def test_awaiting_approval_is_in_chinese_with_the_link_and_mentions():
    message = render(DINGTALK, RobotEvent.AWAITING_APPROVAL, APPLICATION)
    assert message.title == "待审批：杭州示例 申请 Acme ERP 企业版 × 5（A20261123-ABCDEF）"
    assert "(https://apply.example.com/status/tok)" in message.text
    assert message.text.endswith("@13800000000 @manager1") and message.mention


def test_a_wecom_robot_in_english_mentions_by_user_id():
    message = render(WECOM, RobotEvent.AWAITING_APPROVAL, APPLICATION)
    assert message.title.startswith("Awaiting approval: 杭州示例 asks for Acme ERP Enterprise")
    assert message.text.endswith("<@manager1>")


def test_news_that_needs_no_action_mentions_no_one():
    message = render(DINGTALK, RobotEvent.LICENSE_DELIVERED, APPLICATION)
    assert "@13800000000" not in message.text and not message.mention


def test_a_customers_words_cannot_make_links_or_mentions():
    sly = {**APPLICATION, "company": "[点我](https://evil.example) <@all>\n# 标题"}
    message = render(WECOM, RobotEvent.REFUSAL, sly)
    assert "](https://evil" not in message.text and "<@all>" not in message.text


def test_a_digest_has_a_line_per_event():
    items = [(RobotEvent.LICENSE_DELIVERED, {**APPLICATION, "number": f"A-{n}"}) for n in range(3)]
    message = digest(DINGTALK, items)
    assert message.title == "dingpass：3 条通知"
    assert [line[:2] for line in message.text.splitlines()[2:]] == ["1.", "2.", "3."]


def test_the_keyword_is_carried_when_the_robot_has_one():
    robot = dataclasses.replace(DINGTALK, keyword="许可")
    assert (
        "许可"
        in render(
            robot,
            RobotEvent.JOB_FAILED,
            {
                "job_id": 7,
                "kind": "issue_license",
                "subject": "application 1",
                "attempts": 5,
                "error": "boom",
            },
        ).text
    )


def test_one_message_over_the_size_alone_is_cut_visibly_keeping_its_mentions():
    message = render(DINGTALK, RobotEvent.AWAITING_APPROVAL, APPLICATION, limit=300)
    assert len(message.text.encode()) <= 300
    assert "…\n\n@13800000000 @manager1" in message.text


def test_a_digest_fits_while_its_text_is_within_the_robots_size():
    one = (RobotEvent.AWAITING_APPROVAL, {**APPLICATION, "company": "杭" * 190})
    assert fits(WECOM, [one] * 5) and not fits(WECOM, [one] * 9)
