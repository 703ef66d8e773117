"""Posting one markdown message to a robot's webhook: DingTalk's (signed) or WeCom's."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from backend import defaults
from backend.robots.config import Robot
from backend.robots.errors import (
    BUSY,
    THROTTLED,
    RobotRefused,
    RobotThrottled,
    RobotUnavailable,
    fix_for,
)
from backend.robots.sign import signed_url

if TYPE_CHECKING:
    import requests


@dataclass(frozen=True)
class Markdown:
    """A message as both platforms take it: a title for the chat list, markdown text."""

    title: str
    text: str
    mention: bool = False  # @ the robot's people (what needs action)


class RobotClient:
    """Sends to robots over HTTP, with short timeouts; the seam tests replace."""

    def __init__(
        self,
        clock: Callable[[], datetime],
        session: "requests.Session | None" = None,
        timeout: float = defaults.ROBOT_TIMEOUT,
    ) -> None:
        self.clock, self.timeout = clock, timeout
        if session is not None:
            self.session = session  # in place of the one made on first use

    @cached_property
    def session(self) -> "requests.Session":
        """The HTTP session, made on the first send: requests costs some 25 ms of start-up, and
        most runs post to no robot."""
        import requests

        return requests.Session()

    def send(self, robot: Robot, message: Markdown, uuid: str | None = None) -> dict[str, Any]:
        """Post ``message``; the robot's answer, or RobotRefused / RobotUnavailable.

        ``uuid`` is DingTalk's msgUuid: a send repeated with the same one is shown once.
        """
        if robot.kind == "dingtalk":
            url, body = self._dingtalk(robot, message, uuid)
        else:
            url, body = robot.webhook, _wecom_body(robot, message)
        answer = self._post(robot, url, body)
        _check(robot, answer)
        return answer

    def _dingtalk(
        self, robot: Robot, message: Markdown, uuid: str | None
    ) -> tuple[str, dict[str, Any]]:
        url = robot.webhook
        if robot.secret:
            url = signed_url(url, robot.secret, int(self.clock().timestamp() * 1000))
        return url, _dingtalk_body(robot, message, uuid)

    def _post(self, robot: Robot, url: str, body: dict[str, Any]) -> dict[str, Any]:
        import requests  # loaded with the session, on the first send

        try:
            response = self.session.post(url, json=body, timeout=self.timeout)
        except requests.RequestException as err:
            raise RobotUnavailable(
                f"robot {robot.name} at {_where(robot)} did not answer ({type(err).__name__}); "
                "it is tried again later"
            ) from None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or "errcode" not in answer:
            raise RobotUnavailable(
                f"robot {robot.name} at {_where(robot)} answered HTTP {response.status_code} "
                f"without a robot's JSON: is {robot.webhook_env} the robot's webhook?"
            )
        return answer


def _check(robot: Robot, answer: dict[str, Any]) -> None:
    errmsg = str(answer.get("errmsg", ""))
    try:
        errcode = int(answer["errcode"])  # DingTalk's doc shows "0" as a string too
    except (TypeError, ValueError):
        raise RobotUnavailable(
            f"robot {robot.name} at {_where(robot)} answered errcode {answer['errcode']!r} "
            f"({errmsg}), not a number; it is tried again later"
        ) from None
    if errcode == 0:
        return
    if errcode == BUSY:
        # 系统繁忙: the platform's own trouble, the one code robots.md says to send again.
        raise RobotUnavailable(
            f"robot {robot.name} at {_where(robot)} is busy: errcode -1 ({errmsg}); "
            "it is tried again later"
        )
    fix = fix_for(errcode, errmsg, robot.webhook_env, robot.secret_env)
    error = RobotThrottled if errcode in THROTTLED else RobotRefused
    raise error(robot.name, errcode, errmsg, fix)


def _dingtalk_body(robot: Robot, message: Markdown, uuid: str | None) -> dict[str, Any]:
    people = robot.mention if message.mention else None
    body: dict[str, Any] = {
        "msgtype": "markdown",
        "markdown": {"title": message.title, "text": message.text},
        "at": {
            "atMobiles": list(people.mobiles) if people else [],
            "atUserIds": list(people.user_ids) if people else [],
            "isAtAll": False,
        },
    }
    if uuid is not None:
        body["msgUuid"] = uuid
    return body


def _wecom_body(robot: Robot, message: Markdown) -> dict[str, Any]:
    # WeCom's markdown has no mentioned_list: a member is mentioned by <@userid> in the text.
    return {"msgtype": "markdown", "markdown": {"content": message.text}}


def _where(robot: Robot) -> str:
    """The webhook without its token or key, for messages and logs."""
    return robot.webhook.split("?", 1)[0]
