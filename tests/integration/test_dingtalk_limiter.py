"""DingTalk's per-API limit, shared by every function instance through the database."""

import threading

import pytest

from backend.dingtalk.limiter import LONGEST_WAIT, CallLimiter, take_slot
from backend.exceptions import DingTalkRateLimited

SPACING = 50_000  # microseconds: 20 calls a second
NOW = 1_800_000_000_000_000


LONGEST = int(LONGEST_WAIT * 1_000_000)


def book(database, api: str = "start", now: int = NOW, app_key: str = "key") -> int | None:
    return database.run(lambda c: take_slot(c, app_key, api, (now, LONGEST), SPACING))


def test_calls_made_at_once_get_slots_one_spacing_apart(database):
    assert [book(database) for _ in range(3)] == [NOW, NOW + SPACING, NOW + 2 * SPACING]


def test_each_api_and_app_key_has_slots_of_its_own(database):
    book(database, "start")
    assert book(database, "get") == NOW
    assert book(database, "start", app_key="other") == NOW


def test_a_call_after_a_quiet_spell_goes_at_once(database):
    book(database)
    assert book(database, now=NOW + 10 * SPACING) == NOW + 10 * SPACING


def test_concurrent_callers_never_share_a_slot(database):
    slots: list[int] = []
    lock = threading.Lock()

    def caller() -> None:
        for _ in range(10):
            slot = book(database)
            with lock:
                slots.append(slot)

    threads = [threading.Thread(target=caller) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(slots) == [NOW + n * SPACING for n in range(40)]


@pytest.fixture
def waits() -> list[float]:
    return []


def limiter(database, waits: list[float]) -> CallLimiter:
    return CallLimiter(database, "key", 20, now=lambda: NOW / 1_000_000, sleep=waits.append)


def test_a_call_waits_for_its_slot(database, waits):
    calls = limiter(database, waits)
    calls.wait_turn("start")
    calls.wait_turn("start")
    assert waits == [pytest.approx(0.05)]


def test_a_queue_longer_than_the_longest_wait_is_refused_as_rate_limited(database, waits):
    calls = limiter(database, waits)
    for _ in range(int(LONGEST_WAIT * 20) + 1):
        calls.wait_turn("start")
    with pytest.raises(DingTalkRateLimited, match="try again later"):
        calls.wait_turn("start")


def test_a_refused_call_does_not_push_the_queue_on(database):
    for _ in range(int(LONGEST_WAIT * 20) + 1):
        book(database)
    assert [book(database) for _ in range(50)] == [None] * 50
    # A slot later, the next free one is the one after the last booked, not 50 further on.
    assert book(database, now=NOW + SPACING) == NOW + (int(LONGEST_WAIT * 20) + 1) * SPACING


def test_a_call_waits_only_what_is_left_once_its_slot_is_booked(database, waits):
    moments = iter([NOW, NOW + 30_000, NOW + 50_000])  # the booking took 30 ms
    calls = CallLimiter(
        database, "key", 20, now=lambda: next(moments) / 1_000_000, sleep=waits.append
    )
    book(database)  # the slot at NOW is taken: this call's is NOW + 50 ms
    calls.wait_turn("start")
    assert waits == [pytest.approx(0.02)]


def test_no_limit_configured_takes_no_slot(database, waits):
    CallLimiter(database, "key", 0, sleep=waits.append).wait_turn("start")
    assert book(database) == NOW and waits == []


def test_a_call_woken_too_late_for_its_slot_takes_a_new_one(database):
    late = NOW + 200_000  # microseconds
    moments = iter([NOW, NOW, late, late, late, late])
    waits: list[float] = []
    calls = CallLimiter(
        database, "key", 20, now=lambda: next(moments) / 1_000_000, sleep=waits.append
    )
    book(database)  # the slot at NOW is taken: this call waits for NOW + 50 ms...
    calls.wait_turn("start")  # ... wakes at NOW + 200 ms, where it would bunch, and books again
    assert waits == [pytest.approx(0.05)]
    assert book(database, now=late) == late + SPACING  # the slot at NOW + 200 ms went to it
