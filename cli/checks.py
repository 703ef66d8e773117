"""`dingpass checks run [--dry-run]`: the runner's scheduled checks, now, from the command line."""

import click

from backend.catalogue import load_catalogue
from backend.checks.run import CheckSettings, run_checks
from backend.clock import utc_now
from backend.config import Config
from backend.storage.database import Database
from backend.work import services
from cli.context import pass_config


@click.group("checks", help="The scheduled checks the runner's timer makes every minute.")
def group() -> None:
    """The `checks` command group."""


@group.command("run")
@click.option("--dry-run", is_flag=True, help="Show what would be recorded; record nothing.")
@pass_config
def run(config: Config, dry_run: bool) -> None:
    """Look for expiring licenses, pending approvals and failed jobs; record what is due."""
    database = Database(config.database)
    try:
        context = services(config, database, load_catalogue(config.catalogue_file), None, utc_now)
        found = run_checks(context, CheckSettings.from_config(config), utc_now(), dry_run)
    finally:
        database.dispose()
    for line in found:
        click.echo(line)
    if not found:
        click.echo("Nothing is due.")
    elif dry_run:
        click.echo(f"Dry run: {len(found)} would be recorded; nothing was.")
    else:
        click.echo(f"Recorded {len(found)}; the runner sends them on its next pass.")
