"""What robots say: markdown from jinja2 templates per event and language, and digests."""

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from backend import defaults
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
    ("license_expiring", "zh"): "许可将于 {days} 天内到期：{company}，"
    "{product_name}（{license_id}）",
    ("license_expiring", "en"): "License ends in {days} day(s): {company}, {product_name} "
    "({license_id})",
    ("approval_pending", "zh"): "仍待审批（已等 {hours} 小时）：{company}，"
    "{product_name}（{number}）",
    ("approval_pending", "en"): "Still awaiting approval after {hours} h: {company}, "
    "{product_name} ({number})",
    ("daily_digest", "zh"): "dingpass 每日摘要 {date}：{failed_count} 个失败任务，"
    "{overdue_count} 个逾期任务",
    ("daily_digest", "en"): "dingpass daily digest {date}: {failed_count} failed job(s), "
    "{overdue_count} overdue",
    ("digest", "zh"): "dingpass：{count} 条通知",
    ("digest", "en"): "dingpass: {count} notifications",
    ("test", "zh"): "dingpass 测试消息",
    ("test", "en"): "dingpass test message",
}
MESSAGE_BYTES = defaults.ROBOT_MESSAGE_BYTES
"""UTF-8 bytes of a message's text at most: a longer one is cut, with "…"."""
CUT = "…"
MAX_FACT = 200
"""Characters of one fact (a note, an error) shown; a chat message is no place for more."""
_ACTIVE = str.maketrans({"[": "［", "]": "］", "<": "＜", ">": "＞", "\r": " ", "\n": " "})


def render(
    robot: Robot, event: RobotEvent, facts: Facts, limit: int | None = MESSAGE_BYTES
) -> Markdown:
    """The message telling ``robot`` of one event, cut to ``limit`` bytes (None: uncut)."""
    safe = _safe(robot, facts)
    title = TITLES[(event.value, robot.language)].format_map(safe)
    text = _env.get_template(f"{event.value}.{robot.language}.md").render(safe, title=title)
    return _finish(robot, title, text, event.needs_action, limit)


def digest(
    robot: Robot, items: Sequence[tuple[RobotEvent, Facts]], limit: int | None = MESSAGE_BYTES
) -> Markdown:
    """One message carrying several events: a line each, with its link."""
    if len(items) == 1:
        return render(robot, *items[0], limit=limit)
    lines = [
        {
            "title": TITLES[(event.value, robot.language)].format_map(_safe(robot, facts)),
            "link": facts.get("status_url"),
        }
        for event, facts in items
    ]
    title = TITLES[("digest", robot.language)].format(count=len(items))
    text = _env.get_template(f"digest.{robot.language}.md").render(items=lines, title=title)
    return _finish(robot, title, text, any(event.needs_action for event, _ in items), limit)


def fits(robot: Robot, items: Sequence[tuple[RobotEvent, Facts]]) -> bool:
    """Whether one digest of ``items`` stays within the robots' size, uncut."""
    return len(digest(robot, items, limit=None).text.encode()) <= MESSAGE_BYTES


def test_message(robot: Robot) -> Markdown:
    """What `dingpass robots test` sends."""
    title = TITLES[("test", robot.language)]
    text = _env.get_template(f"test.{robot.language}.md").render(title=title, robot=robot.name)
    return _finish(robot, title, text, mention=False)


def _finish(
    robot: Robot, title: str, text: str, mention: bool, limit: int | None = MESSAGE_BYTES
) -> Markdown:
    """Mentions and the robot's keyword, as each platform wants them in the text."""
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    people, tail = robot.mention, ""
    if mention and robot.kind == "dingtalk" and (people.mobiles or people.user_ids):
        # DingTalk @-mentions only those whose @mobile / @userId is also in the text.
        tail += "\n\n" + " ".join(f"@{who}" for who in (*people.mobiles, *people.user_ids))
    if mention and robot.kind == "wecom" and people.user_ids:
        tail += "\n\n" + " ".join(f"<@{who}>" for who in people.user_ids)
    keyword = f"\n\n###### {robot.keyword}" if robot.keyword else ""
    if limit is not None:
        # The mentions and keyword stay whole: without them the robot refuses or @s nobody.
        text = _cut(text, limit - len((tail + keyword).encode()))
    if robot.keyword and robot.keyword not in text:
        tail += keyword
    if robot.keyword and robot.keyword not in title:
        title = f"{title} {robot.keyword}"
    return Markdown(title, text + tail, mention)


def _cut(text: str, most: int) -> str:
    """``text`` in at most ``most`` UTF-8 bytes: whole characters, then "…" if any were cut."""
    data = text.encode()
    if len(data) <= most:
        return text
    kept = data[: max(most - len(CUT.encode()), 0)].decode(errors="ignore")
    return kept.rstrip() + CUT


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
