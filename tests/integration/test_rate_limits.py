"""Fixed-window counters, several counted by one upsert and read back by one query."""

import pytest

from backend.storage import rate_limits

WINDOW, NOW = 3600, 1_795_435_200 + 600  # ten minutes into a window


def hit_all(database, counters, now=NOW):
    with database.transaction() as connection:
        return rate_limits.hit_all(connection, counters, WINDOW, now)


def test_each_counter_allows_its_own_limit(database):
    answers = [hit_all(database, [("ip:a", 3), ("email:b", 2)]) for _ in range(3)]
    assert answers == [None, None, WINDOW - 600]


def test_one_counter_over_its_limit_refuses_the_attempt(database):
    hit_all(database, [("email:b", 1)])
    assert hit_all(database, [("ip:a", 10), ("email:b", 1)]) == WINDOW - 600


def test_a_new_window_starts_the_count_again(database):
    for _ in range(2):
        hit_all(database, [("ip:a", 2), ("email:b", 2)])
    assert hit_all(database, [("ip:a", 2), ("email:b", 2)], NOW + WINDOW) is None


def test_a_refused_attempt_rolled_back_is_not_counted(database):
    with pytest.raises(RuntimeError), database.transaction() as connection:
        assert rate_limits.hit_all(connection, [("ip:a", 0)], WINDOW, NOW) is not None
        raise RuntimeError("refused: the caller's transaction rolls back")
    assert hit_all(database, [("ip:a", 1)]) is None


def test_a_key_stored_in_another_case_is_read_back(database):
    """MySQL's collation takes both spellings of an IPv6 address for one row; SQLite does not."""
    hit_all(database, [("ip:2001:DB8::1", 5)])
    assert hit_all(database, [("ip:2001:db8::1", 5), ("email:b", 5)]) is None


def test_one_counter_is_counted_as_several_are(database):
    with database.transaction() as connection:
        answers = [rate_limits.hit_all(connection, [("ip:a", 1)], WINDOW, NOW) for _ in range(2)]
    assert answers == [None, WINDOW - 600]
