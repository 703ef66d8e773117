"""The connection pool: a connection that died while idle is never handed out."""

import time

import pytest
from sqlalchemy import text

from backend.storage import database as database_module

pytestmark = pytest.mark.mariadb


@pytest.fixture
def mariadb(database):
    if database.engine.dialect.name != "mysql":
        pytest.skip("a file database has no connection to lose")
    return database


def test_a_connection_killed_while_idle_is_replaced_before_use(mariadb, database_url, monkeypatch):
    monkeypatch.setattr(database_module, "PING_IDLE", 0.05)
    with mariadb.transaction() as connection:
        first = connection.execute(text("SELECT CONNECTION_ID()")).scalar()
    with database_module.Database(database_url).transaction() as admin:
        admin.execute(text(f"KILL {first}"))  # the server restarted, the NAT cut it: all one
    time.sleep(0.1)
    with mariadb.transaction() as connection:
        assert connection.execute(text("SELECT CONNECTION_ID()")).scalar() != first


def test_a_connection_handed_back_moments_ago_is_used_without_a_ping(mariadb, monkeypatch):
    pings = []
    with mariadb.transaction() as connection:
        raw = connection.connection.dbapi_connection
        monkeypatch.setattr(raw, "ping", lambda **_: pings.append(1), raising=False)
    for _ in range(5):
        with mariadb.transaction() as connection:
            connection.execute(text("SELECT 1"))
    assert pings == []
