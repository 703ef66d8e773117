"""`dingpass apps create | list | allow | disable | enable`: the applications that call the
signed API (changes, activation codes), and what each may do."""

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import click
from sqlalchemy import Connection

from backend.apps import store
from backend.apps.errors import AppError, ScopesRefused
from backend.apps.store import ApiApp
from backend.clock import utc_now
from backend.config import Config
from backend.storage.database import Database
from cli.context import pass_config

T = TypeVar("T")


@click.group(
    "apps",
    help="The applications (ITSM, OA, resellers) that call the signed API, signing as API "
    "Gateway's apps, and what each may do.",
)
def group() -> None:
    """The `apps` command group."""


class Scopes(click.ParamType[frozenset[str]]):
    """Scopes, comma-separated: changes,codes.redeem."""

    name = "SCOPES"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> frozenset[str]:
        if isinstance(value, frozenset):
            return value
        try:
            return store.parse_scopes(str(value))
        except ScopesRefused as err:
            self.fail(str(err), param, ctx)


SCOPES = Scopes()
SCOPES_HELP = f"What the app may do, comma-separated, among: {', '.join(store.SCOPES)}."


@group.command("create")
@click.argument("name")
@click.option(
    "--allow",
    "scopes",
    type=SCOPES,
    default=",".join(sorted(store.DEFAULT_SCOPES)),
    show_default=True,
    help=SCOPES_HELP,
)
@pass_config
def create(config: Config, name: str, scopes: frozenset[str]) -> None:
    """Register NAME and print its AppKey and AppSecret (the secret this once only)."""
    app = _run(config, lambda connection: store.create(connection, name, utc_now(), scopes))
    click.echo(f"Created application {app.name}.")
    click.echo(f"AppKey:    {app.app_key}")
    click.echo(f"AppSecret: {app.secret}")
    click.echo(f"Allowed:   {_scopes(app)}")
    click.echo(
        "Store the AppSecret now, where the caller keeps its secrets: it is not shown again. "
        "Lost, it cannot be recovered: disable this app and create another."
    )


@group.command("list")
@pass_config
def list_apps(config: Config) -> None:
    """List the applications, with their keys and whether they may call (never secrets)."""
    apps = _run(config, store.listing)
    if not apps:
        click.echo("No applications (add one: `dingpass apps create NAME`).")
        return
    for app in apps:
        click.echo(
            f"{app.name:<24} {app.app_key:<12} created {_time(app.created_at)}  "
            f"allowed {_scopes(app)}  {_state(app)}"
        )


@group.command("allow")
@click.argument("name_or_key")
@click.argument("scopes", type=SCOPES)
@pass_config
def allow(config: Config, name_or_key: str, scopes: frozenset[str]) -> None:
    """Let NAME_OR_KEY do SCOPES and nothing else (comma-separated; replaces what it had)."""
    before, after = _run(
        config, lambda c: (store.find(c, name_or_key), store.allow(c, name_or_key, scopes))
    )
    click.echo(f"{_named(after)} may now: {_scopes(after)} (before: {_scopes(before)}).")


@group.command("disable")
@click.argument("name_or_key")
@pass_config
def disable(config: Config, name_or_key: str) -> None:
    """Refuse NAME_OR_KEY's requests from now on (403 app_disabled); `enable` undoes it."""
    now = utc_now()
    before, after = _run(
        config, lambda c: (store.find(c, name_or_key), store.disable(c, name_or_key, now))
    )
    if not before.enabled:
        click.echo(f"{_named(after)} was disabled already ({_state(after)}).")
        return
    click.echo(f"Disabled {_named(after)}: its requests are refused from now on.")


@group.command("enable")
@click.argument("name_or_key")
@pass_config
def enable(config: Config, name_or_key: str) -> None:
    """Take NAME_OR_KEY's requests again, with the same key and secret."""
    before, after = _run(
        config, lambda c: (store.find(c, name_or_key), store.enable(c, name_or_key))
    )
    if before.enabled:
        click.echo(f"{_named(after)} was enabled already.")
        return
    click.echo(f"Enabled {_named(after)}: its requests are taken again.")


def _run(config: Config, work: Callable[[Connection], T]) -> T:
    """``work`` in a transaction of DATABASE_URL's database; a mistake becomes one clear line."""
    database = Database(config.database)
    try:
        return database.run(work)
    except AppError as err:
        raise click.ClickException(str(err)) from None
    finally:
        database.dispose()


def _named(app: ApiApp) -> str:
    return f"{app.name} ({app.app_key})"


def _scopes(app: ApiApp) -> str:
    return store.write_scopes(app.scopes)


def _state(app: ApiApp) -> str:
    return "enabled" if app.disabled_at is None else f"disabled since {_time(app.disabled_at)}"


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
