"""Schema upgrades with Alembic, driven from code (no alembic.ini to keep in step)."""

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

SCRIPTS = "backend.storage:migrations"


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database's schema up to ``revision``."""
    with engine.begin() as connection:
        command.upgrade(_alembic(connection), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the database's schema back to ``revision``, where the data allows it.

    Every step's own check runs before the first step: on MySQL each step's DDL commits as it
    runs, so a refusal found halfway down would leave the schema between two revisions.
    """
    with engine.begin() as connection:
        config = _alembic(connection)
        current = MigrationContext.configure(connection).get_current_revision()
        if current is not None:
            for step in ScriptDirectory.from_config(config).iterate_revisions(current, revision):
                refuse = getattr(step.module, "refuse_unless_downgradable", None)
                if refuse is not None:
                    refuse(connection)
        command.downgrade(config, revision)


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
    return ScriptDirectory.from_config(_alembic(None)).get_current_head()
