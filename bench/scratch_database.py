"""A database made for one benchmark run and dropped after it: MariaDB when it answers."""

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from backend.storage import migrate
from backend.storage.database import make_engine

MARIADB = "mysql+pymysql://root@127.0.0.1:3306"


@contextmanager
def database_url(folder: Path) -> Iterator[str]:
    """A new, migrated database: on MariaDB if it answers, else SQLite in ``folder``."""
    name = f"dingpass_bench_{secrets.token_hex(4)}"
    admin = create_engine(f"{MARIADB}/test")
    try:
        with admin.begin() as connection:
            connection.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
    except Exception:  # noqa: BLE001 -- no MariaDB here: the figures on SQLite
        url = f"sqlite:///{folder}/bench.db"
        migrate.upgrade(make_engine(url))
        yield url
        return
    try:
        migrate.upgrade(make_engine(f"{MARIADB}/{name}"))
        yield f"{MARIADB}/{name}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP DATABASE {name}"))
        admin.dispose()
