"""A start's mark (sent to DingTalk, answer awaited) is cleared only by the run that set it.

A runner that stalls past its lease after DingTalk refused its start (an FC instance frozen
between the answer and the next transaction) comes back to a record another runner has taken
over. If that runner's own start is in doubt, its mark is what makes the next run search for
the instance instead of opening a second one.
"""

import secrets
from datetime import datetime, timedelta, timezone

from backend.applications.validation import validate
from backend.catalogue import load_catalogue
from backend.changes.model import ChangeStatus
from backend.storage import applications, changes
from tests.integration.conftest import CATALOGUE, a_form

MARKED = datetime(2026, 12, 1, 9, 0, 0, 123456, tzinfo=timezone.utc)
TAKEN_OVER = MARKED + timedelta(minutes=10)


def new_application(connection) -> int:  # type: ignore[no-untyped-def]
    form = validate(a_form(), load_catalogue(CATALOGUE))
    number, token = "A20261201-000001", secrets.token_hex(16)
    new = applications.NewApplication(form, number, token, "203.0.113.7", MARKED)
    return applications.insert_application(connection, new)


def new_change(connection) -> int:  # type: ignore[no-untyped-def]
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


def test_a_refused_start_clears_its_own_mark_on_an_application(database):
    with database.transaction() as connection:
        application_id = new_application(connection)
        assert applications.mark_requested(connection, application_id, MARKED, None)
        applications.unmark_requested(connection, application_id, MARKED)
        assert applications.by_id(connection, application_id).instance_requested_at is None


def test_a_stale_runs_refusal_leaves_the_mark_of_the_run_that_took_over_an_application(database):
    with database.transaction() as connection:
        application_id = new_application(connection)
        assert applications.mark_requested(connection, application_id, MARKED, None)
        assert applications.mark_requested(connection, application_id, TAKEN_OVER, MARKED)
        applications.unmark_requested(connection, application_id, MARKED)  # the stale run
        found = applications.by_id(connection, application_id)
        assert found.instance_requested_at == TAKEN_OVER


def test_a_refused_start_clears_its_own_mark_on_a_change(database):
    with database.transaction() as connection:
        change_id = new_change(connection)
        assert changes.mark_requested(connection, change_id, MARKED, None)
        changes.unmark_requested(connection, change_id, MARKED)
        assert changes.by_id(connection, change_id).approval.requested_at is None


def test_a_stale_runs_refusal_leaves_the_mark_of_the_run_that_took_over_a_change(database):
    with database.transaction() as connection:
        change_id = new_change(connection)
        assert changes.mark_requested(connection, change_id, MARKED, None)
        assert changes.mark_requested(connection, change_id, TAKEN_OVER, MARKED)
        changes.unmark_requested(connection, change_id, MARKED)  # the stale run
        assert changes.by_id(connection, change_id).approval.requested_at == TAKEN_OVER
