"""`dingpass changes list | show | cleanup`: resource changes from the command line."""

import json
from collections.abc import Callable
from typing import TypeVar

import click
from sqlalchemy import Connection

from backend.changes.cleanup import cleanup as clean_up
from backend.changes.errors import UnknownChange
from backend.changes.model import ChangeStatus
from backend.clock import utc_now
from backend.config import Config
from backend.storage import changes as store
from backend.storage.database import Database
from backend.work import change_context
from cli.context import pass_config

T = TypeVar("T")


@click.group("changes", help="Inspect resource changes and clean up failed ones.")
def group() -> None:
    """The `changes` command group."""


@group.command("list")
@click.option("--status", type=click.Choice(list(ChangeStatus)), help="Only changes in it.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@pass_config
def list_changes(config: Config, status: str | None, limit: int) -> None:
    """List changes, newest first, with each caller's request id."""
    found = _read(config, lambda c: store.listing(c, status=status, limit=limit))
    if not found:
        click.echo("No changes.")
        return
    for change in found:
        when = f"{change.created_at:%Y-%m-%d %H:%M}"
        line = f"{change.public_id}  {change.type:<18} {change.status:<17} {when}  "
        click.echo((line + f"{change.request_id}  {change.error or ''}").rstrip())


@group.command("show")
@click.argument("change_id")
@pass_config
def show(config: Config, change_id: str) -> None:
    """Print a change with its steps, results and resources, as JSON."""
    change = _read(config, lambda c: store.by_public_id(c, change_id))
    if change is None:
        raise UnknownChange(f"no change {change_id}: `dingpass changes list` shows them")
    click.echo(json.dumps(change.view(), indent=2, ensure_ascii=False))


@group.command("cleanup")
@click.argument("change_id")
@pass_config
def cleanup(config: Config, change_id: str) -> None:
    """Delete every resource a failed change created, newest first."""
    database = Database(config.database)
    try:
        deleted = clean_up(database, change_context(config), change_id, utc_now)
    finally:
        database.dispose()
    for step in deleted:
        click.echo(f"deleted {step.type} {step.resource_id} (step {step.name})")
    click.echo(
        f"Change {change_id}: {len(deleted)} resource(s) deleted; nothing of it remains."
        if deleted
        else f"Change {change_id} has no resources left to delete."
    )


def _read(config: Config, work: Callable[[Connection], T]) -> T:
    """``work`` in a transaction of DATABASE_URL's database, its pool closed after."""
    database = Database(config.database)
    try:
        return database.run(work)
    finally:
        database.dispose()
