"""ROBOTS_FILE: robots read once, secrets from the variables it names, mistakes by robot and key."""

import pytest

from backend.config import Config
from backend.exceptions import ConfigError
from backend.robots.events import RobotEvent

GOOD = """
[robots.ops]
kind = "dingtalk"
events = ["awaiting_approval", "job_failed"]
webhook_env = "ROBOT_OPS_WEBHOOK"
secret_env = "ROBOT_OPS_SECRET"
mention = { mobiles = ["13800000000"] }

[robots.team]
kind = "wecom"
language = "en"
events = ["license_delivered"]
webhook_env = "ROBOT_TEAM_WEBHOOK"
"""
ENV = {
    "ROBOT_OPS_WEBHOOK": "https://oapi.dingtalk.com/robot/send?access_token=T",
    "ROBOT_OPS_SECRET": "SECabc",
    "ROBOT_TEAM_WEBHOOK": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K",
}


def config_with(tmp_path, text, **env):
    path = tmp_path / "robots.toml"
    path.write_text(text, encoding="utf-8")
    return Config.from_env({"ROBOTS_FILE": str(path), **ENV, **env})


def test_no_robots_file_means_no_robots():
    assert Config.from_env({}).robots == ()


def test_robots_are_read_with_their_secrets_from_the_environment(tmp_path):
    ops, team = config_with(tmp_path, GOOD).robots
    assert (ops.name, ops.kind, ops.secret, ops.mention.mobiles) == (
        "ops",
        "dingtalk",
        "SECabc",
        ("13800000000",),
    )
    assert ops.events == {RobotEvent.AWAITING_APPROVAL, RobotEvent.JOB_FAILED}
    assert (team.kind, team.language, team.secret) == ("wecom", "en", None)


def test_a_robot_never_shows_its_webhook_or_secret(tmp_path):
    ops = config_with(tmp_path, GOOD).robots[0]
    assert "SECabc" not in repr(ops) and "access_token" not in repr(ops)
    assert str(ops) == "ops (dingtalk)"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (('"job_failed"]', '"jobs_failed"]'), "robot 'ops': events: 'jobs_failed' is not one of"),
        (('kind = "wecom"', 'kind = "slack"'), "robot 'team': kind must be one of dingtalk, wecom"),
        (("mention =", "mentions ="), "robot 'ops': unknown key 'mentions'"),
    ],
)
def test_a_mistake_names_the_robot_and_the_key(tmp_path, change, words):
    with pytest.raises(ConfigError, match="ROBOTS_FILE") as raised:
        config_with(tmp_path, GOOD.replace(*change))
    assert words in str(raised.value)


def test_a_variable_left_unset_is_named(tmp_path):
    with pytest.raises(ConfigError) as raised:
        config_with(tmp_path, GOOD, ROBOT_OPS_SECRET="")
    assert "robot 'ops': secret_env: ROBOT_OPS_SECRET is not set" in str(raised.value)


@pytest.mark.parametrize("key", ["mobiles", "user_ids"])
def test_a_mention_given_as_one_string_is_refused_not_read_as_its_characters(tmp_path, key):
    text = GOOD.replace('mention = { mobiles = ["13800000000"] }', f'mention = {{ {key} = "138" }}')
    with pytest.raises(ConfigError) as raised:
        config_with(tmp_path, text)
    assert f"robot 'ops': mention.{key} must be a list of strings" in str(raised.value)
