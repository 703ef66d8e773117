"""Schema upgrades work on databases that already hold data, on SQLite and MariaDB."""

import secrets
from datetime import datetime, timezone

import pytest
from sqlalchemy import create_engine, insert, select, text

from backend.storage import migrate
from backend.storage.database import make_engine
from backend.storage.schema import application_events, applications
from tests.integration.conftest import MARIADB

NOW = datetime(2026, 11, 23, 8, tzinfo=timezone.utc)
ROW = {
    "number": "A20261123-AAAAAA",
    "token": "t" * 32,
    "status": "submitted",
    "product": "acme-erp",
    "product_version": "",
    "feature_code": "9F2C",
    "company": "杭州示例",
    "contact": "张三",
    "email": "z@example.com",
    "phone": "",
    "quantity": 5,
    "validity": "1y",
    "note": "",
    "language": "zh",
    "client_ip": "203.0.113.7",
    "created_at": NOW,
    "updated_at": NOW,
}


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def empty_database(request, tmp_path):
    if request.param == "sqlite":
        yield make_engine(f"sqlite:///{tmp_path}/old.db")
        return
    name = f"dingpass_migrate_{secrets.token_hex(4)}"
    admin = create_engine(f"{MARIADB}/test")
    with admin.begin() as connection:
        connection.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
    engine = make_engine(f"{MARIADB}/{name}")
    yield engine
    engine.dispose()
    with admin.begin() as connection:
        connection.execute(text(f"DROP DATABASE {name}"))
    admin.dispose()


def test_every_revision_upgrades_a_database_with_applications_in_it(empty_database):
    migrate.upgrade(empty_database, "0001")
    with empty_database.begin() as connection:  # names only 0001's columns
        connection.execute(insert(applications).values(ROW))
        connection.execute(
            insert(application_events).values(application_id=1, status="submitted", at=NOW)
        )
    migrate.upgrade(empty_database)
    with empty_database.begin() as connection:
        kept = connection.execute(select(applications.c.company, applications.c.instance_id)).one()
    assert tuple(kept) == ("杭州示例", None)
    assert migrate.current(empty_database) == migrate.head()
