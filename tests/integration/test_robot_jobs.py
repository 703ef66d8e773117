"""A robot's budget is counted in the database: runners together never exceed it."""

import threading
from datetime import timedelta

import pytest

from backend.robots import budget

WINDOW = timedelta(seconds=61)


def test_the_budget_gives_twenty_places_a_minute_then_says_when_the_next_frees(database, clock):
    with database.transaction() as connection:
        taken = [budget.take(connection, "ops", clock(), 20, WINDOW) for _ in range(21)]
    assert taken[:20] == [None] * 20 and taken[20] == WINDOW
    clock.advance(61)
    with database.transaction() as connection:
        assert budget.take(connection, "ops", clock(), 20, WINDOW) is None


@pytest.mark.mariadb
def test_runners_taking_at_once_share_twenty_places_between_them(database, clock, database_url):
    if not database_url.startswith("mysql"):
        pytest.skip("the concurrency this checks is MariaDB's")
    with database.transaction() as connection:
        budget.take(connection, "ops", clock(), 20, WINDOW)  # makes the places
    clock.advance(61)
    results, start = [], threading.Barrier(8)

    def runner() -> None:
        start.wait()
        for _ in range(4):
            results.append(
                database.run(lambda c: budget.take(c, "ops", clock(), 20, WINDOW) is None)
            )

    threads = [threading.Thread(target=runner) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 20


def test_a_place_stamped_when_its_send_goes_frees_a_window_after_that(database, clock):
    with database.transaction() as connection:
        slot = budget.place(connection, "ops", clock(), 1, WINDOW)
        clock.advance(30)  # a lock waited for between taking the place and sending
        budget.stamp(connection, "ops", slot, clock())
    clock.advance(60)
    with database.transaction() as connection:
        assert budget.take(connection, "ops", clock(), 1, WINDOW) == timedelta(seconds=1)
