"""`dingpass db upgrade | downgrade | current`: the database schema, through Alembic."""

import click
from sqlalchemy import Engine

from backend.config import Config
from backend.storage import migrate
from backend.storage.database import make_engine
from cli.context import pass_config


@click.group("db", help="Create and upgrade the database schema.")
def group() -> None:
    """The `db` command group."""


@group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@pass_config
def upgrade(config: Config, revision: str) -> None:
    """Create or upgrade the schema of DATABASE_URL's database."""
    engine = make_engine(config.database)
    migrate.upgrade(engine, revision)
    _report(engine)


@group.command("downgrade")
@click.option("--revision", required=True, help="The revision to go back to, e.g. 0003.")
@pass_config
def downgrade(config: Config, revision: str) -> None:
    """Take the schema back to an earlier revision; refused while the data needs the newer one."""
    engine = make_engine(config.database)
    migrate.downgrade(engine, revision)
    _report(engine)


@group.command("current")
@pass_config
def current(config: Config) -> None:
    """Print the schema revision the database is at."""
    click.echo(
        migrate.current(make_engine(config.database)) or "no schema (run `dingpass db upgrade`)"
    )


def _report(engine: Engine) -> None:
    where = engine.url.render_as_string(hide_password=True)  # the URL, its password as ***
    click.echo(f"Database at revision {migrate.current(engine)} ({where})")
