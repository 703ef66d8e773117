"""A database that stops answering mid-way: the backend gives up in bounded time with a 503."""

import dataclasses

import pytest

from backend.app import create_app
from tests.integration.conftest import SignedClient, a_form
from tests.integration.faults.proxy import FaultyLink


@pytest.fixture
def behind_a_link(config, database, database_url):
    if not database_url.startswith("mysql"):
        pytest.skip("a hung server is a network database's failure")
    link = FaultyLink(3306)
    url = database_url.replace("127.0.0.1:3306", f"127.0.0.1:{link.port}")
    app = create_app(dataclasses.replace(config, database_url=url))
    yield link, SignedClient(app)
    link.heal()
    app.extensions["database"].dispose()
    link.close()


def test_a_hung_database_is_answered_503_not_waited_on_for_ever(behind_a_link):
    link, api = behind_a_link
    assert api.post("/applications", a_form()).status_code == 201  # a pooled connection exists
    link.hang()
    answer = api.post("/applications", a_form(email="second@example.com"))
    assert answer.status_code == 503 and answer.get_json()["error"] == "database_unavailable"
