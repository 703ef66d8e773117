"""Building the approval machinery from the configuration, for every entry point alike."""

import logging
from collections.abc import Callable
from datetime import datetime

from backend.approvals.form import ProcessSettings
from backend.approvals.opener import InstanceOpener
from backend.catalogue import Catalogue
from backend.config import Config
from backend.dingtalk.client import DingTalkClient
from backend.exceptions import ConfigError
from backend.storage.database import Database

log = logging.getLogger(__name__)
NEEDED = (
    "DINGTALK_APP_KEY",
    "DINGTALK_APP_SECRET",
    "DINGTALK_PROCESS_CODE",
    "DINGTALK_ORIGINATOR_USER_ID",
)


def missing_dingtalk_settings(config: Config) -> list[str]:
    """The settings that opening approval instances still needs."""
    values = (
        config.dingtalk_app_key,
        config.dingtalk_app_secret,
        config.dingtalk_process_code,
        config.dingtalk_originator_user_id,
    )
    return [name for name, value in zip(NEEDED, values, strict=True) if not value]


def dingtalk_client(
    config: Config, database: Database, clock: Callable[[], datetime]
) -> DingTalkClient:
    """The DingTalk client; ConfigError naming what is missing."""
    missing = missing_dingtalk_settings(config)
    if missing:
        raise ConfigError(f"DingTalk is not configured: set {', '.join(missing)}")
    return DingTalkClient(
        config.dingtalk_api,
        config.dingtalk_app_key or "",
        config.dingtalk_app_secret or "",
        database,
        clock,
        config.dingtalk_oapi,
        config.dingtalk_calls_per_second,
    )


def instance_opener(
    config: Config, database: Database, catalogue: Catalogue, clock: Callable[[], datetime]
) -> InstanceOpener | None:
    """The opener, or None (logged) when DingTalk is not configured: applications then wait."""
    missing = missing_dingtalk_settings(config)
    if missing:
        log.warning(
            "applications will wait unopened until DingTalk is configured: set %s",
            ", ".join(missing),
        )
        return None
    settings = ProcessSettings(
        config.dingtalk_process_code or "",
        config.dingtalk_originator_user_id or "",
        config.dingtalk_dept_id,
        config.dingtalk_form_fields,
        config.public_base_url,
    )
    return InstanceOpener(
        database, dingtalk_client(config, database, clock), settings, catalogue, clock
    )
