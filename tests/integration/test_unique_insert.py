"""Inserting a row a unique key may hold already: refused quietly, in one statement."""

from collections.abc import Iterator

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select

from backend.storage.unique import insert_if_absent, insert_unless_present
from tests.integration.conftest import statements_sent

metadata = MetaData()
probes = Table(
    "unique_probes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(20), nullable=False, unique=True),
)


@pytest.fixture
def table(database) -> Iterator[Table]:
    metadata.create_all(database.engine)
    yield probes
    metadata.drop_all(database.engine)


def keys(database, table) -> list[str]:
    with database.transaction() as connection:
        return list(connection.execute(select(table.c.key).order_by(table.c.key)).scalars())


def test_a_new_row_is_inserted_and_its_id_given(database, table):
    with database.transaction() as connection:
        new_id = insert_unless_present(connection, table, {"key": "a"})
    assert isinstance(new_id, int)
    assert keys(database, table) == ["a"]


def test_a_row_present_already_is_refused_and_the_transaction_keeps_its_work(database, table):
    with database.transaction() as connection:
        assert insert_if_absent(connection, table, {"key": "a"})
        assert insert_unless_present(connection, table, {"key": "a"}) is None
        assert insert_if_absent(connection, table, {"key": "b"})
    assert keys(database, table) == ["a", "b"]


def test_a_refused_insert_costs_one_statement(database, table):
    with database.transaction() as connection:
        insert_if_absent(connection, table, {"key": "a"})
        with statements_sent(database.engine) as sent:
            insert_if_absent(connection, table, {"key": "a"})
            insert_if_absent(connection, table, {"key": "b"})
    assert [statement.split()[0] for statement in sent] == ["INSERT", "INSERT"]
