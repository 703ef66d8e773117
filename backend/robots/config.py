"""The robots a deployment posts to: a TOML file, secrets named by environment variables.

Read once when the configuration is built; every mistake names the file, the robot and the
key. The webhook (and a DingTalk robot's 加签 secret) never sit in the file: it names the
variables that hold them, so the file can be committed and the secrets stay in the
environment.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.exceptions import ConfigError
from backend.robots.events import RobotEvent
from backend.toml_files import read_toml

KINDS = ("dingtalk", "wecom")
LANGUAGES = ("zh", "en")
KEYS = {"kind", "events", "language", "mention", "webhook_env", "secret_env", "keyword"}
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


@dataclass(frozen=True)
class Mention:
    """Whom a message that needs action @-mentions: DingTalk/WeCom user ids and mobiles."""

    mobiles: tuple[str, ...] = ()
    user_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Robot:
    """One group robot: where it posts, what it is told of, in which language."""

    name: str
    kind: str  # dingtalk | wecom
    events: frozenset[RobotEvent]
    webhook: str = field(repr=False)
    webhook_env: str
    secret: str | None = field(default=None, repr=False)  # DingTalk 加签, starts with SEC
    secret_env: str | None = None
    language: str = "zh"
    mention: Mention = Mention()
    keyword: str | None = None  # a DingTalk 自定义关键词 every message must carry

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


def load_robots(path: Path, environ: Mapping[str, str]) -> tuple[Robot, ...]:
    """Read and check the robots file, resolving the variables it names in ``environ``."""
    data = read_toml("ROBOTS_FILE", path)
    tables = data.get("robots", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"ROBOTS_FILE: {path}: robots must be [robots.<name>] tables")
    return tuple(_robot(path, name, entry, environ) for name, entry in tables.items())


def _robot(path: Path, name: str, entry: Any, environ: Mapping[str, str]) -> Robot:
    try:
        return _read_robot(name, entry, environ)
    except (KeyError, TypeError, ValueError) as err:
        message = err.args[0] if err.args else str(err)
        raise ConfigError(f"ROBOTS_FILE: {path}, robot {name!r}: {message}") from None


def _read_robot(name: str, entry: Any, environ: Mapping[str, str]) -> Robot:
    if not isinstance(entry, dict):
        raise TypeError("must be a table: [robots.<name>]")
    if not NAME.fullmatch(name):
        raise ValueError("names are lower-case letters, digits, - and _, at most 32")
    unknown = sorted(set(entry) - KEYS)
    if unknown:
        raise KeyError(f"unknown key {unknown[0]!r}; the keys are {', '.join(sorted(KEYS))}")
    kind = _choice(entry, "kind", KINDS, None)
    secret_env = _optional_text(entry, "secret_env")
    if secret_env and kind != "dingtalk":
        raise ValueError("secret_env: only DingTalk robots sign (a WeCom key is its own secret)")
    return Robot(
        name=name,
        kind=kind,
        events=_events(entry),
        webhook=_resolved(entry, "webhook_env", environ),
        webhook_env=entry["webhook_env"],
        secret=_resolved(entry, "secret_env", environ) if secret_env else None,
        secret_env=secret_env,
        language=_choice(entry, "language", LANGUAGES, "zh"),
        mention=_mention(entry.get("mention", {})),
        keyword=_optional_text(entry, "keyword"),
    )


def _choice(entry: dict[str, Any], key: str, allowed: tuple[str, ...], default: str | None) -> str:
    value = entry.get(key, default)
    if value not in allowed:
        raise ValueError(f"{key} must be one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def _events(entry: dict[str, Any]) -> frozenset[RobotEvent]:
    names = entry.get("events")
    if not isinstance(names, list) or not names:
        raise ValueError(f"events must list some of {', '.join(RobotEvent)}")
    unknown = [n for n in names if n not in set(RobotEvent)]
    if unknown:
        raise ValueError(f"events: {unknown[0]!r} is not one of {', '.join(RobotEvent)}")
    return frozenset(RobotEvent(n) for n in names)


def _resolved(entry: dict[str, Any], key: str, environ: Mapping[str, str]) -> str:
    variable = entry.get(key)
    if not isinstance(variable, str) or not re.fullmatch(r"[A-Z][A-Z0-9_]*", variable):
        raise ValueError(f"{key} must name an environment variable, like ROBOT_OPS_WEBHOOK")
    value = environ.get(variable, "").strip()
    if not value:
        raise ValueError(f"{key}: {variable} is not set in the environment")
    if key == "webhook_env" and not value.startswith(("https://", "http://")):
        raise ValueError(f"{key}: {variable} must hold the webhook's http(s) URL")
    return value


def _optional_text(entry: dict[str, Any], key: str) -> str | None:
    value = entry.get(key)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ValueError(f"{key} must be a non-empty string")
    return value


def _mention(value: Any) -> Mention:
    if not isinstance(value, dict) or set(value) - {"mobiles", "user_ids"}:
        raise ValueError("mention must be {mobiles = [...], user_ids = [...]}")
    return Mention(_names(value, "mobiles"), _names(value, "user_ids"))


def _names(mention: dict[str, Any], key: str) -> tuple[str, ...]:
    # A lone string would otherwise be taken as its characters: "138..." as 11 mentions.
    names = mention.get(key, [])
    if not isinstance(names, list) or not all(isinstance(v, str) for v in names):
        raise ValueError(f'mention.{key} must be a list of strings, like ["13800000000"]')
    return tuple(names)


def subscribed(robots: tuple[Robot, ...], event: RobotEvent) -> list[Robot]:
    """The robots told of ``event``."""
    return [robot for robot in robots if event in robot.events]
