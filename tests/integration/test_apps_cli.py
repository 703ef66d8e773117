"""`dingpass apps`: create, list, disable and enable the changes API's callers."""

import re

import pytest
from click.testing import CliRunner

from backend.apps import store
from backend.config import Config
from cli import apps
from cli.context import script_info
from tests.conftest import CATALOGUE

KEY_LINE = re.compile(r"^AppKey: +([0-9]+)$", re.MULTILINE)
SECRET_LINE = re.compile(r"^AppSecret: +([0-9a-f]+)$", re.MULTILINE)


@pytest.fixture
def run_apps(database, database_url, tmp_path, monkeypatch):
    """Run `dingpass apps ARGS` in-process on the test database."""
    monkeypatch.chdir(tmp_path)
    config = Config.from_env({"CATALOGUE_FILE": str(CATALOGUE), "DATABASE_URL": database_url})

    def run(*args: str):
        return CliRunner().invoke(apps.group, list(args), obj=script_info(config))

    return run


def test_create_prints_the_key_and_the_secret_once_with_a_warning(run_apps, database):
    created = run_apps("create", "itsm")
    assert created.exit_code == 0, created.output
    key = KEY_LINE.search(created.output).group(1)
    secret = SECRET_LINE.search(created.output).group(1)
    assert "Store the AppSecret now" in created.output and "not shown again" in created.output
    with database.transaction() as connection:
        assert store.by_key(connection, key).secret == secret


def test_list_shows_name_key_and_state_but_no_secret(run_apps):
    created = run_apps("create", "itsm").output
    listed = run_apps("list")
    assert listed.exit_code == 0
    assert re.search(
        rf"^itsm +{KEY_LINE.search(created).group(1)} +created 20", listed.output, re.M
    )
    assert listed.output.rstrip().endswith("enabled")
    assert SECRET_LINE.search(created).group(1) not in listed.output


def test_list_without_apps_says_how_to_add_one(run_apps):
    assert "dingpass apps create NAME" in run_apps("list").output


def test_disable_by_name_then_enable_by_key(run_apps):
    key = KEY_LINE.search(run_apps("create", "itsm").output).group(1)
    disabled = run_apps("disable", "itsm")
    assert disabled.exit_code == 0 and f"Disabled itsm ({key})" in disabled.output
    assert "disabled since" in run_apps("list").output
    enabled = run_apps("enable", key)
    assert enabled.exit_code == 0 and f"Enabled itsm ({key})" in enabled.output
    assert run_apps("list").output.rstrip().endswith("enabled")


def test_disabling_a_disabled_app_says_since_when(run_apps):
    run_apps("create", "itsm")
    run_apps("disable", "itsm")
    again = run_apps("disable", "ITSM")
    assert again.exit_code == 0 and "was disabled already (disabled since 20" in again.output


@pytest.mark.parametrize("command", ["disable", "enable"])
def test_an_unknown_name_exits_1_and_points_to_the_list(run_apps, command):
    result = run_apps(command, "nobody")
    assert result.exit_code == 1
    assert "no API application is named or keyed 'nobody'" in result.output
    assert "dingpass apps list" in result.output


def test_a_taken_name_exits_1_and_creates_nothing(run_apps, database):
    run_apps("create", "itsm")
    again = run_apps("create", "itsm")
    assert again.exit_code == 1 and "already named 'itsm'" in again.output
    assert "AppSecret" not in again.output
    with database.transaction() as connection:
        assert len(store.listing(connection)) == 1


def test_a_name_that_cannot_be_one_exits_1_with_the_rule(run_apps):
    result = run_apps("create", "123456789")
    assert result.exit_code == 1 and "not only digits (those are keys)" in result.output
