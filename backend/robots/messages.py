"""What robots say: markdown from jinja2 templates per event and language, and digests."""

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from backend.robots.clients import Markdown
from backend.robots.config import Robot
from backend.robots.events import RobotEvent

Facts = Mapping[str, Any]
"""What a message's template fills in: the application's fields, or the failed job's."""
TEMPLATES = Path(__file__).parent / "templates"
_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=False,  # noqa: S701 -- markdown for a chat, not HTML
    undefined=StrictUndefined,
    trim_blocks=True,
)
TITLES = {
    ("awaiting_approval", "zh"): "待审批：{company} 申请 {product_name} × {quantity}（{number}）",
    ("awaiting_approval", "en"): "Awaiting approval: {company} asks for {product_name} × "
    "{quantity} ({number})",
    ("license_delivered", "zh"): "许可已送达：{company}，{product_name}（{number}）",
    ("license_delivered", "en"): "License delivered: {company}, {product_name} ({number})",
    ("refusal", "zh"): "申请未获批准：{company}，{product_name}（{number}）",
    ("refusal", "en"): "Application not approved: {company}, {product_name} ({number})",
    ("job_failed", "zh"): "任务失败：{kind}（{subject}）",
    ("job_failed", "en"): "Job failed: {kind} ({subject})",
    ("digest", "zh"): "dingpass：{count} 条通知",
    ("digest", "en"): "dingpass: {count} notifications",
    ("test", "zh"): "dingpass 测试消息",
    ("test", "en"): "dingpass test message",
}
MAX_FACT = 200
"""Characters of one fact (a note, an error) shown; a chat message is no place for more."""
_ACTIVE = str.maketrans({"[": "［", "]": "］", "<": "＜", ">": "＞", "\r": " ", "\n": " "})


def render(robot: Robot, event: RobotEvent, facts: Facts) -> Markdown:
    """The message telling ``robot`` of one event."""
    safe = _safe(robot, facts)
    title = TITLES[(event.value, robot.language)].format_map(safe)
    text = _env.get_template(f"{event.value}.{robot.language}.md").render(safe, title=title)
    return _finish(robot, title, text, event.needs_action)


def digest(robot: Robot, items: Sequence[tuple[RobotEvent, Facts]]) -> Markdown:
    """One message carrying several events: a line each, with its link."""
    if len(items) == 1:
        return render(robot, *items[0])
    lines = [
        {
            "title": TITLES[(event.value, robot.language)].format_map(_safe(robot, facts)),
            "link": facts.get("status_url"),
        }
        for event, facts in items
    ]
    title = TITLES[("digest", robot.language)].format(count=len(items))
    text = _env.get_template(f"digest.{robot.language}.md").render(items=lines, title=title)
    return _finish(robot, title, text, any(event.needs_action for event, _ in items))


def test_message(robot: Robot) -> Markdown:
    """What `dingpass robots test` sends."""
    title = TITLES[("test", robot.language)]
    text = _env.get_template(f"test.{robot.language}.md").render(title=title, robot=robot.name)
    return _finish(robot, title, text, mention=False)


def _finish(robot: Robot, title: str, text: str, mention: bool) -> Markdown:
    """Mentions and the robot's keyword, as each platform wants them in the text."""
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    people = robot.mention
    if mention and robot.kind == "dingtalk" and (people.mobiles or people.user_ids):
        # DingTalk @-mentions only those whose @mobile / @userId is also in the text.
        text += "\n\n" + " ".join(f"@{who}" for who in (*people.mobiles, *people.user_ids))
    if mention and robot.kind == "wecom" and people.user_ids:
        text += "\n\n" + " ".join(f"<@{who}>" for who in people.user_ids)
    if robot.keyword and robot.keyword not in text:
        text += f"\n\n###### {robot.keyword}"
    if robot.keyword and robot.keyword not in title:
        title = f"{title} {robot.keyword}"
    return Markdown(title, text, mention)


def _safe(robot: Robot, facts: Facts) -> dict[str, Any]:
    """The facts as the robot's language shows them, made plain."""
    names = facts.get("product_names") or {}
    localised = {**facts, "product_name": names.get(robot.language, facts.get("product_name"))}
    return {name: _plain(value) for name, value in localised.items()}


def _plain(value: Any) -> Any:
    """A customer's words as text: no links, tags or mentions of their own, on one line."""
    if not isinstance(value, str):
        return value
    text = value.translate(_ACTIVE)
    return text if len(text) <= MAX_FACT else text[: MAX_FACT - 1] + "…"
