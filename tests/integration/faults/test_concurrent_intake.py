"""Many customers at once: no deadlock answered 500, and the limits count exactly."""

import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from backend.app import create_app
from tests.integration.conftest import LiveServer, a_form, signed

SUBMISSIONS = 50
LIMIT = 20


@pytest.fixture
def live(config, database, clock):
    limited = dataclasses.replace(config, rate_limit_per_ip=LIMIT, rate_limit_per_email=LIMIT)
    app = create_app(limited, clock=clock)
    server = LiveServer(app)
    yield server
    server.stop()
    app.extensions["database"].dispose()


def submit_all(live, ips: list[str]) -> list[int]:
    def submit(n: int) -> int:
        body = json.dumps(a_form(email=f"user{n}@example.com")).encode()
        headers = signed("POST", "/applications", body, ip=ips[n])
        return requests.post(
            f"{live.url}/applications", data=body, headers=headers, timeout=30
        ).status_code

    with ThreadPoolExecutor(max_workers=SUBMISSIONS) as pool:
        return list(pool.map(submit, range(SUBMISSIONS)))


def test_fifty_customers_at_once_from_fifty_addresses_are_all_taken(live):
    statuses = submit_all(live, [f"203.0.113.{n}" for n in range(SUBMISSIONS)])
    assert statuses == [201] * SUBMISSIONS


def test_fifty_submissions_at_once_from_one_address_are_limited_exactly(live):
    statuses = submit_all(live, ["203.0.113.7"] * SUBMISSIONS)
    assert sorted(statuses) == [201] * LIMIT + [429] * (SUBMISSIONS - LIMIT)
