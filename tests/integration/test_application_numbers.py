"""Application numbers: a number already taken sends the whole intake round again, once."""

import re
from collections.abc import Iterator
from datetime import datetime, timezone
from types import SimpleNamespace

from sqlalchemy import func, select

from backend.applications import service
from backend.storage.schema import application_events, applications, jobs, rate_limits
from license.codes import ALPHABET
from tests.integration.conftest import a_form

TAKEN, FREE = "A20261123-TAKEN0", "A20261123-FREE00"


def numbers_drawn(monkeypatch, *numbers: str) -> Iterator[str]:
    """Make intake draw ``numbers`` in turn; the iterator tells what is left undrawn."""
    drawn = iter(numbers)
    monkeypatch.setattr(service, "_new_number", lambda at: next(drawn))
    return drawn


def count(database, table) -> int:
    with database.transaction() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


def test_a_number_is_the_day_and_six_random_symbols():
    number = service._new_number(datetime(2026, 11, 23, tzinfo=timezone.utc))
    assert re.fullmatch(f"A20261123-[{ALPHABET}]{{6}}", number)


def test_a_number_taken_already_is_drawn_again(api, database, monkeypatch):
    drawn = numbers_drawn(monkeypatch, TAKEN, TAKEN, FREE)
    assert api.post("/applications", a_form(email="first@example.com")).status_code == 201
    again = api.post("/applications", a_form(email="second@example.com"), key="page-key-1")
    assert again.status_code == 201 and again.get_json()["number"] == FREE
    assert list(drawn) == []
    assert [count(database, t) for t in (applications, application_events, jobs)] == [2, 2, 2]


def test_a_number_drawn_again_counts_against_the_limits_once(api, database, monkeypatch):
    numbers_drawn(monkeypatch, TAKEN, TAKEN, FREE)
    api.post("/applications", a_form(email="first@example.com"))
    api.post("/applications", a_form(email="second@example.com"))
    with database.transaction() as connection:
        counts = dict(connection.execute(select(rate_limits.c.key, rate_limits.c.count)).all())
    assert counts == {
        "ip:203.0.113.7": 2,
        "email:first@example.com": 1,
        "email:second@example.com": 1,
    }


def test_a_number_taken_at_every_draw_fails_and_stores_nothing(api, database, monkeypatch):
    drawn = numbers_drawn(monkeypatch, TAKEN, *[TAKEN] * service.NUMBER_ATTEMPTS, FREE)
    api.post("/applications", a_form(email="first@example.com"))
    answer = api.post("/applications", a_form(email="second@example.com"))
    assert answer.status_code == 500 and list(drawn) == [FREE]
    assert [count(database, t) for t in (applications, application_events, jobs)] == [1, 1, 1]


def test_a_clash_on_anything_but_the_number_is_not_drawn_again(api, database, monkeypatch):
    drawn = numbers_drawn(monkeypatch, FREE, TAKEN, TAKEN, TAKEN)
    monkeypatch.setattr(service, "secrets", SimpleNamespace(token_urlsafe=lambda n: "same"))
    api.post("/applications", a_form(email="first@example.com"))
    answer = api.post("/applications", a_form(email="second@example.com"))
    assert answer.status_code == 500 and list(drawn) == [TAKEN, TAKEN]
    assert [count(database, t) for t in (applications, application_events, jobs)] == [1, 1, 1]
