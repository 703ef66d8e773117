"""An approver's decision moves a waiting change exactly once, whatever brings it, on SQLite
and MariaDB: agreed, its steps are queued; refused or withdrawn, it ends with nothing made."""

from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from backend.approvals.dispatcher import Dispatcher, Outcome
from backend.approvals.events import ApprovalEvent
from backend.changes.forms import ApprovalForm, ChangeForms
from backend.changes.service import Changes
from backend.changes.types import change_types
from backend.storage import changes as store
from backend.storage.schema import jobs
from tests.integration import test_changes
from tests.integration.test_changes import NEW_NETWORK

apps, context, fake = test_changes.apps, test_changes.context, test_changes.fake  # the fixtures

FORM = "PROC-CHANGE-OLD"
INSTANCE = "pi-change-0001"
DECIDED = datetime(2026, 11, 23, 7, 59, 30, tzinfo=timezone.utc)


@pytest.fixture
def waiting(database, clock, context, apps) -> int:
    """A change awaiting its approval on FORM, its instance INSTANCE linked; its id."""
    forms = ChangeForms((ApprovalForm(FORM, frozenset({"*"})),))
    changes = Changes(database, change_types(context.plugins), context.plugins, clock, forms=forms)
    change = changes.submit(apps[0], NEW_NETWORK).change
    with database.transaction() as connection:
        assert store.link_instance(connection, change.id, INSTANCE)
    return change.id


def agreed(transport: str = "http") -> ApprovalEvent:
    payload = {"processCode": FORM, "finishTime": int(DECIDED.timestamp() * 1000)}
    return ApprovalEvent(INSTANCE, "finish", "agree", transport, payload)


def step_jobs(database) -> int:
    query = select(func.count()).select_from(jobs).where(jobs.c.kind == "change_step")
    with database.transaction() as connection:
        return int(connection.execute(query).scalar_one())


def the_change(database, change_id: int):
    with database.transaction() as connection:
        return store.by_id(connection, change_id)


def test_an_agreed_change_is_planned_with_its_steps_queued(database, clock, waiting):
    assert step_jobs(database) == 0  # nothing runs while it waits
    assert Dispatcher(database, clock, process_codes=[FORM]).dispatch(agreed()) is Outcome.MOVED
    change = the_change(database, waiting)
    assert change.status == "planned" and change.approval.decision == "agree"
    assert step_jobs(database) == len(change.steps) == 4


def test_the_decision_time_is_the_approvers(database, clock, waiting):
    Dispatcher(database, clock, process_codes=[FORM]).dispatch(agreed())
    assert the_change(database, waiting).approval.decided_at == DECIDED


def test_ten_deliveries_of_a_decision_move_the_change_once(database, clock, waiting):
    dispatcher = Dispatcher(database, clock, process_codes=[FORM])
    outcomes = [dispatcher.dispatch(agreed(("http", "stream")[n % 2])) for n in range(10)]
    assert outcomes.count(Outcome.MOVED) == 1 and outcomes.count(Outcome.DUPLICATE) == 9
    assert step_jobs(database) == 4


def test_a_refusal_ends_the_change_refused_with_its_steps_cancelled(database, clock, waiting):
    refused = ApprovalEvent(INSTANCE, "finish", "refuse", "http", {"processCode": FORM})
    Dispatcher(database, clock, process_codes=[FORM]).dispatch(refused)
    change = the_change(database, waiting)
    assert change.status == "refused" and change.finished_at is not None
    assert {step.status for step in change.steps} == {"cancelled"}
    assert step_jobs(database) == 0


def test_a_decision_on_a_form_no_longer_configured_still_moves_its_change(database, clock, waiting):
    # The form was renamed or made anew meanwhile: the change waiting on it is still ours.
    dispatcher = Dispatcher(database, clock, process_codes=["PROC-CHANGE-NEW"])
    assert dispatcher.dispatch(agreed()) is Outcome.MOVED
    assert the_change(database, waiting).status == "planned"


def test_another_forms_instance_is_not_ours(database, clock, waiting):
    stranger = ApprovalEvent("pi-other", "finish", "agree", "http", {"processCode": "PROC-LEAVE"})
    outcome = Dispatcher(database, clock, process_codes=[FORM]).dispatch(stranger)
    assert outcome is Outcome.NOT_OURS
    assert the_change(database, waiting).status == "awaiting_approval"
