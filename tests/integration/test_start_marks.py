"""A start's mark (sent to DingTalk, answer awaited) is cleared only by the run that set it.

A runner that stalls past its lease after DingTalk refused its start (an FC instance frozen
between the answer and the next transaction) comes back to a record another runner has taken
over. If that runner's own start is in doubt, its mark is what makes the next run search for
the instance instead of opening a second one.
"""

import secrets
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Connection

from backend.applications.validation import validate
from backend.catalogue import load_catalogue
from backend.changes.model import ChangeStatus
from backend.storage import applications, changes
from tests.integration.conftest import CATALOGUE, a_form

MARKED = datetime(2026, 12, 1, 9, 0, 0, 123456, tzinfo=timezone.utc)
TAKEN_OVER = MARKED + timedelta(minutes=10)


def new_application(connection: Connection) -> int:
    form = validate(a_form(), load_catalogue(CATALOGUE))
    number, token = "A20261201-000001", secrets.token_hex(16)
    new = applications.NewApplication(form, number, token, "203.0.113.7", MARKED)
    return applications.insert_application(connection, new)


def new_change(connection: Connection) -> int:
    change_id = changes.insert_change(
        connection,
        app_id=None,
        request_id="req-1",
        request_hash="hash",
        type_="ecs.instance",
        spec={},
        status=ChangeStatus.AWAITING_APPROVAL,
        now=MARKED,
        approval_form="PROC-CHANGE",
    )
    assert change_id is not None
    return change_id


def application_mark(connection: Connection, application_id: int) -> datetime | None:
    return applications.by_id(connection, application_id).instance_requested_at


def change_mark(connection: Connection, change_id: int) -> datetime | None:
    return changes.by_id(connection, change_id).approval.requested_at


@pytest.fixture(
    params=[
        pytest.param((new_application, applications, application_mark), id="application"),
        pytest.param((new_change, changes, change_mark), id="change"),
    ]
)
def record(request):  # type: ignore[no-untyped-def]
    """What a start is marked on: how to make one, its storage module, how to read its mark."""
    return request.param


def test_a_refused_start_clears_its_own_mark(database, record):
    new, store, mark_of = record
    with database.transaction() as connection:
        record_id = new(connection)
        assert store.mark_requested(connection, record_id, MARKED, None)
        store.unmark_requested(connection, record_id, MARKED)
        assert mark_of(connection, record_id) is None


def test_a_stale_runs_refusal_leaves_the_mark_of_the_run_that_took_over(database, record):
    new, store, mark_of = record
    with database.transaction() as connection:
        record_id = new(connection)
        assert store.mark_requested(connection, record_id, MARKED, None)
        assert store.mark_requested(connection, record_id, TAKEN_OVER, MARKED)
        store.unmark_requested(connection, record_id, MARKED)  # the stale run
        assert mark_of(connection, record_id) == TAKEN_OVER
