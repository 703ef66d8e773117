"""What each API application may do: scopes stored, granted with `dingpass apps`, and a route
refusing an app without its scope with 403 not_allowed and the command that grants it."""

import re

import pytest
from click.testing import CliRunner

from backend.apps import store
from backend.apps.errors import ScopesRefused
from backend.config import Config
from cli import apps
from cli.context import script_info
from tests.conftest import CATALOGUE
from tests.integration.test_changes_api import VPC, AppClient

KEY_LINE = re.compile(r"^AppKey: +([0-9]+)$", re.MULTILINE)


@pytest.fixture
def run_apps(database, database_url, tmp_path, monkeypatch):
    """Run `dingpass apps ARGS` in-process on the test database."""
    monkeypatch.chdir(tmp_path)
    config = Config.from_env({"CATALOGUE_FILE": str(CATALOGUE), "DATABASE_URL": database_url})

    def run(*args: str):
        return CliRunner().invoke(apps.group, list(args), obj=script_info(config))

    return run


def scopes_of(database, name: str) -> frozenset[str]:
    with database.transaction() as connection:
        return store.find(connection, name).scopes


def test_a_new_app_may_use_the_changes_api_only(database, clock):
    with database.transaction() as connection:
        app = store.create(connection, "itsm", clock())
    assert app.scopes == {"changes"} and scopes_of(database, "itsm") == {"changes"}


def test_an_app_is_created_with_the_scopes_asked_for(database, clock):
    with database.transaction() as connection:
        store.create(connection, "shop", clock(), frozenset({"codes.redeem", "codes.query"}))
    assert scopes_of(database, "shop") == {"codes.redeem", "codes.query"}


def test_allow_replaces_the_scopes(database, clock):
    with database.transaction() as connection:
        store.create(connection, "shop", clock())
        allowed = store.allow(connection, "SHOP", frozenset({"codes.generate"}))
    assert allowed.scopes == {"codes.generate"} and scopes_of(database, "shop") == allowed.scopes


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("changes,codes.everything", "unknown scope(s) 'codes.everything': choose among changes"),
        (" , ", "give at least one scope"),
    ],
)
def test_unknown_or_no_scopes_are_refused_with_the_known_ones(typed, message):
    with pytest.raises(ScopesRefused, match=re.escape(message)) as refused:
        store.parse_scopes(typed)
    assert "codes.generate, codes.query, codes.redeem, codes.delete" in str(refused.value)


def test_an_app_without_the_changes_scope_is_refused_403_with_the_command(backend, database, clock):
    with database.transaction() as connection:
        shop = store.create(connection, "shop", clock(), frozenset({"codes.redeem"}))
    answer = AppClient(backend, shop, clock).send("POST", "/api/v1/changes", VPC)
    assert answer.status_code == 403 and answer.get_json()["error"] == "not_allowed"
    assert answer.get_json()["message"]["en"] == (
        "The application shop is not allowed changes; the operator grants it with "
        "`dingpass apps allow shop changes,codes.redeem`."
    )


def test_a_granted_scope_is_taken_at_the_next_request(backend, database, clock):
    with database.transaction() as connection:
        shop = store.create(connection, "shop", clock(), frozenset({"codes.redeem"}))
        store.allow(connection, "shop", frozenset({"changes"}))
    answer = AppClient(backend, shop, clock).send("POST", "/api/v1/changes", VPC)
    assert answer.status_code == 202


def test_the_cli_creates_an_app_with_scopes_and_says_them(run_apps, database):
    created = run_apps("create", "shop", "--allow", "codes.redeem, codes.query")
    assert created.exit_code == 0, created.output
    assert "Allowed:   codes.query,codes.redeem" in created.output
    assert scopes_of(database, "shop") == {"codes.query", "codes.redeem"}


def test_the_cli_creates_an_app_for_the_changes_api_by_default(run_apps, database):
    assert "Allowed:   changes" in run_apps("create", "itsm").output
    assert scopes_of(database, "itsm") == {"changes"}


def test_the_cli_allow_sets_the_scopes_and_says_before_and_after(run_apps, database):
    key = KEY_LINE.search(run_apps("create", "shop").output).group(1)
    allowed = run_apps("allow", key, "codes.generate,codes.delete")
    assert allowed.exit_code == 0, allowed.output
    assert allowed.output.strip() == (
        f"shop ({key}) may now: codes.generate,codes.delete (before: changes)."
    )
    assert scopes_of(database, "shop") == {"codes.generate", "codes.delete"}


def test_the_cli_list_shows_each_apps_scopes(run_apps):
    run_apps("create", "shop", "--allow", "codes.redeem")
    assert re.search(
        r"^shop +[0-9]+ +created .* allowed codes.redeem +enabled$", run_apps("list").output, re.M
    )


def test_the_cli_refuses_an_unknown_scope_with_the_known_ones(run_apps, database):
    result = run_apps("create", "shop", "--allow", "codes.all")
    assert result.exit_code == 2
    assert "unknown scope(s) 'codes.all': choose among changes, codes.generate" in result.output
    with database.transaction() as connection:
        assert store.listing(connection) == []


def test_the_cli_allow_of_an_unknown_app_exits_1(run_apps):
    result = run_apps("allow", "nobody", "changes")
    assert (
        result.exit_code == 1 and "no API application is named or keyed 'nobody'" in result.output
    )
