"""Database.run: a transaction MySQL or MariaDB rolled back is run again from the start."""

from collections.abc import Iterator

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, update

from backend.storage.database import Database

pytestmark = pytest.mark.mariadb
metadata = MetaData()
counters = Table(
    "retry_counters", metadata, Column("id", Integer, primary_key=True), Column("n", Integer)
)


@pytest.fixture
def counter(database) -> Iterator[Table]:
    metadata.create_all(database.engine)
    with database.transaction() as connection:
        connection.execute(insert(counters).values(id=1, n=0))
    yield counters
    metadata.drop_all(database.engine)


@pytest.mark.parametrize("snapshot_isolation", ["ON"], indirect=True)  # OFF loses the rival's
def test_an_update_of_a_row_changed_since_the_snapshot_runs_again(
    snapshot_isolation: Database, database, counter
):
    attempts = []

    def add_one(connection) -> int:
        attempts.append(1)
        seen = connection.execute(select(counter.c.n).where(counter.c.id == 1)).scalar_one()
        if len(attempts) == 1:  # another instance adds its own one meanwhile
            with database.transaction() as rival:
                rival.execute(update(counter).values(n=counter.c.n + 1))
        connection.execute(update(counter).where(counter.c.id == 1).values(n=seen + 1))
        return seen + 1

    assert snapshot_isolation.run(add_one) == 2 and len(attempts) == 2
    with database.transaction() as connection:
        assert connection.execute(select(counter.c.n)).scalar_one() == 2  # neither one lost
