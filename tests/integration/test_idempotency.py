"""A submission retried under its Idempotency-Key is stored once and answered as the first was."""

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import func, select

from backend.storage.schema import applications, jobs, rate_limits
from tests.integration.conftest import LiveServer, a_form, signed


def stored(database) -> int:
    with database.transaction() as connection:
        return connection.execute(select(func.count()).select_from(applications)).scalar()


def test_a_retry_under_the_same_key_gets_the_first_answer(api, database):
    key = str(uuid.uuid4())
    first = api.post("/applications", a_form(), key=key)
    again = api.post("/applications", a_form(), key=key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.get_json() == first.get_json()
    assert (first.headers["Idempotent-Replayed"], again.headers["Idempotent-Replayed"]) == (
        "false",
        "true",
    )
    assert stored(database) == 1


def test_a_retry_does_not_count_against_the_limits(api, database):
    key = str(uuid.uuid4())
    answers = [api.post("/applications", a_form(), key=key).status_code for _ in range(10)]
    assert answers == [201] * 10  # the test config allows 3 per email and 5 per IP


def test_a_retry_leaves_the_counts_as_the_first_left_them(api, database):
    key = str(uuid.uuid4())
    for _ in range(3):
        api.post("/applications", a_form(), key=key)
    with database.transaction() as connection:
        counts = connection.execute(select(rate_limits.c.count)).scalars().all()
    assert counts == [1, 1]  # the IP's and the email's


def test_a_retry_after_the_limits_are_used_up_gets_the_first_answer(api, database):
    key = str(uuid.uuid4())
    first = api.post("/applications", a_form(), key=key)
    for n in range(2):  # the test config allows 3 per email
        assert api.post("/applications", a_form(), ip=f"198.51.100.{n}").status_code == 201
    again = api.post("/applications", a_form(), key=key)
    assert again.status_code == 201 and again.get_json() == first.get_json()


def test_the_same_key_with_another_form_is_refused(api, database):
    key = str(uuid.uuid4())
    api.post("/applications", a_form(), key=key)
    other = api.post("/applications", a_form(company="另一家公司"), key=key)
    assert other.status_code == 409 and other.get_json()["error"] == "conflict"
    assert "Idempotency-Key" in other.get_json()["message"]["en"] and stored(database) == 1


def test_submissions_without_a_key_are_each_stored(api, database):
    api.post("/applications", a_form())
    api.post("/applications", a_form())
    assert stored(database) == 2


def test_twenty_retries_racing_under_one_key_store_one_application(backend, database):
    server, key = LiveServer(backend), str(uuid.uuid4())
    body = json.dumps(a_form()).encode()

    def submit(_: int) -> tuple[int, str]:
        headers = signed("POST", "/applications", body, key=key)
        answer = requests.post(f"{server.url}/applications", data=body, headers=headers, timeout=30)
        return answer.status_code, answer.json().get("number", "")

    try:
        with ThreadPoolExecutor(max_workers=20) as pool:
            answers = list(pool.map(submit, range(20)))
    finally:
        server.stop()
    assert {status for status, _ in answers} == {201}
    assert len({number for _, number in answers}) == 1
    assert stored(database) == 1
    with database.transaction() as connection:
        assert connection.execute(select(func.count()).select_from(jobs)).scalar() == 1
