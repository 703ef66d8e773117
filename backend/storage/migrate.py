"""Schema upgrades with Alembic, driven from code (no alembic.ini to keep in step)."""

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

SCRIPTS = "backend.storage:migrations"


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database's schema up to ``revision``."""
    with engine.begin() as connection:
        command.upgrade(_alembic(connection), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the database's schema back to ``revision``, where the data allows it."""
    with engine.begin() as connection:
        command.downgrade(_alembic(connection), revision)


def current(engine: Engine) -> str | None:
    """The revision the database is at, or None if it has no schema yet."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _alembic(connection: object) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", SCRIPTS)
    config.attributes["connection"] = connection
    return config


def head() -> str | None:
    """The newest revision the code knows."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic(None)).get_current_head()
