"""Database.run: a transaction MySQL or MariaDB rolled back whole is run again from the start."""

from collections.abc import Iterator

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, update

from backend.storage.database import MYSQL_CONNECT_ARGS, Database

pytestmark = pytest.mark.mariadb
metadata = MetaData()
counters = Table(
    "retry_counters", metadata, Column("id", Integer, primary_key=True), Column("n", Integer)
)


@pytest.fixture
def snapshot_isolated(database, database_url, monkeypatch) -> Iterator[Database]:
    """A Database whose sessions refuse to update a row changed since their snapshot (1020)."""
    if database.engine.dialect.name != "mysql":
        pytest.skip("SQLite's writers take turns: nothing changes under a transaction")
    with database.transaction() as connection:
        found = connection.exec_driver_sql("SHOW VARIABLES LIKE 'innodb_snapshot_isolation'")
        if found.first() is None:
            pytest.skip("this MariaDB has no innodb_snapshot_isolation")
    metadata.create_all(database.engine)
    with database.transaction() as connection:
        connection.execute(insert(counters).values(id=1, n=0))
    setting = f"{MYSQL_CONNECT_ARGS['init_command']}, innodb_snapshot_isolation = ON"
    monkeypatch.setitem(MYSQL_CONNECT_ARGS, "init_command", setting)
    isolated = Database(database_url)
    yield isolated
    isolated.dispose()
    metadata.drop_all(database.engine)


def test_an_update_of_a_row_changed_since_the_snapshot_runs_again(snapshot_isolated, database):
    attempts = []

    def add_one(connection) -> int:
        attempts.append(1)
        seen = connection.execute(select(counters.c.n).where(counters.c.id == 1)).scalar_one()
        if len(attempts) == 1:  # another instance adds its own one meanwhile
            with database.transaction() as rival:
                rival.execute(update(counters).values(n=counters.c.n + 1))
        connection.execute(update(counters).where(counters.c.id == 1).values(n=seen + 1))
        return seen + 1

    assert snapshot_isolated.run(add_one) == 2 and len(attempts) == 2
    with database.transaction() as connection:
        assert connection.execute(select(counters.c.n)).scalar_one() == 2  # neither one lost
