"""Errors of the robots, each saying which setting to fix.

RobotError (DingpassError)
 +-- RobotRefused          the robot answered errcode != 0: a setting is wrong (RetryCannotHelp)
 |    +-- RobotThrottled   410100 / 45009: over 20 a minute; wait, then send again
 +-- RobotUnavailable      no answer, not the robot's JSON, or errcode -1: try again later
 +-- UnknownRobot (LookupError)  no robot of that name in ROBOTS_FILE
"""

from backend.exceptions import DingpassError, RetryCannotHelp

THROTTLED = {410100, 45009}
BUSY = -1
"""系统繁忙: the robot platform's own trouble; sent again later, like no answer at all."""
MODERATED = (
    "DingTalk's content moderation refused the text ({what}); the applicant's own words "
    "(company, note) are the likely cause: read the job's robot_messages batch, and "
    "`dingpass jobs retry` once the application is corrected, or leave it failed"
)
FIXES = {
    "keywords not in content": "add the robot's keyword to its `keyword` in ROBOTS_FILE "
    "(messages carry it), or remove 自定义关键词 from the robot's security settings",
    "sign not match": "{secret_env} does not match the robot's 加签 secret (SEC...): copy it "
    "again from the robot's security settings",
    "invalid timestamp": "this machine's clock is more than an hour off DingTalk's: fix NTP",
    "not in whitelist": "the robot's IP地址（段） setting does not list this deployment's "
    "egress address (the NAT gateway's EIP): add it, or use 加签 instead",
}
BY_CODE = {
    400101: "{webhook_env} holds a token DingTalk does not know: copy the webhook again",
    400102: "the robot is disabled in the group: enable it",
    400106: "the robot was removed from the group: add one and set {webhook_env}",
    400013: "the group was dissolved: point {webhook_env} at another group's robot",
    93000: "{webhook_env} holds a key WeCom does not know: copy the webhook again",
    43004: "a bug: the request's Content-Type was not application/json",
    430101: MODERATED.format(what="an unsafe link"),
    430102: MODERATED.format(what="unsuitable text"),
    430103: MODERATED.format(what="an unsuitable image"),
    430104: MODERATED.format(what="unsuitable content"),
}


class RobotError(DingpassError):
    """A robot did not take a message."""


class RobotRefused(RobotError, RetryCannotHelp):
    """The robot answered with an error code; ``fix`` says which setting to change.

    Its job fails at once: sending again cannot help until the setting is fixed. A throttle
    (RobotThrottled) is the exception, and its job waits instead.
    """

    def __init__(self, robot: str, errcode: int, errmsg: str, fix: str) -> None:
        super().__init__(f"robot {robot} refused the message: errcode {errcode} ({errmsg}); {fix}")
        self.robot, self.errcode, self.errmsg, self.fix = robot, errcode, errmsg, fix


class RobotThrottled(RobotRefused):
    """The robot took too many messages: it refuses all for a while (DingTalk: ten minutes)."""


class RobotUnavailable(RobotError):
    """The webhook could not be reached, or did not answer as a robot does: try again later."""


class UnknownRobot(RobotError, LookupError):
    """No robot has that name."""


def fix_for(errcode: int, errmsg: str, webhook_env: str, secret_env: str | None) -> str:
    """What to change so the robot takes messages, from its answer."""
    names = {"webhook_env": webhook_env, "secret_env": secret_env or ""}
    if errcode == 310000 and "sign" in errmsg and secret_env is None:
        return "the robot has 加签 on: name the variable holding its SEC... secret in secret_env"
    for words, fix in FIXES.items():
        if words in errmsg:
            return fix.format(**names)
    if errcode in THROTTLED:
        return "over 20 messages a minute; the robot is paused and sent to again later"
    return BY_CODE.get(errcode, "see the robot platform's error codes").format(**names)
