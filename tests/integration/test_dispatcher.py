"""Approval events move an application exactly once, whatever brings them and how often."""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError

from backend.approvals.dispatcher import Dispatcher, Outcome, apply_held
from backend.approvals.events import ApprovalEvent
from backend.approvals.reconciler import Reconciler
from backend.storage.applications import mark_pending
from backend.storage.database import MYSQL_CONNECT_ARGS, Database
from backend.storage.schema import (
    application_events,
    applications,
    approval_events,
    jobs,
)
from tests.integration.conftest import a_form, meanwhile, statements_sent

AGREE = ApprovalEvent("pi-0001", "finish", "agree", "http", {"processInstanceId": "pi-0001"})


@pytest.fixture
def dispatcher(database, clock):
    return Dispatcher(database, clock)


def count(database, table, **where) -> int:
    query = select(func.count()).select_from(table)
    for name, value in where.items():
        query = query.where(table.c[name] == value)
    with database.transaction() as connection:
        return connection.execute(query).scalar()


def test_agree_approves_and_records_the_license_work(pending, dispatcher, api, database):
    assert dispatcher.dispatch(AGREE) is Outcome.MOVED
    status = api.get(f"/applications/{pending}").get_json()
    assert status["status"] == "approved"
    assert [e["status"] for e in status["timeline"]] == [
        "submitted",
        "pending",
        "approved",
    ]
    assert count(database, jobs, kind="issue_license") == 1


@pytest.mark.parametrize(
    ("event", "status", "work"),
    [
        (
            ApprovalEvent("pi-0001", "finish", "refuse", "http"),
            "refused",
            "send_refusal_mail",
        ),
        (
            ApprovalEvent("pi-0001", "terminate", None, "stream"),
            "terminated",
            "send_refusal_mail",
        ),
    ],
)
def test_refuse_and_terminate_end_the_application(
    pending, dispatcher, api, database, event, status, work
):
    assert dispatcher.dispatch(event) is Outcome.MOVED
    assert api.get(f"/applications/{pending}").get_json()["status"] == status
    assert count(database, jobs, kind=work) == 1


def test_the_same_event_ten_times_over_both_transports_moves_once(pending, dispatcher, database):
    outcomes = [
        dispatcher.dispatch(ApprovalEvent("pi-0001", "finish", "agree", t))
        for t in ["http", "stream"] * 5
    ]
    assert outcomes == [Outcome.MOVED] + [Outcome.DUPLICATE] * 9
    assert (
        count(database, approval_events) == 1
        and count(database, jobs) - count(database, jobs, kind="open_instance") == 1
    )
    assert count(database, application_events, status="approved") == 1


def test_ten_concurrent_deliveries_move_once(pending, database, clock):
    outcomes, barrier = [], threading.Barrier(10)

    def deliver():
        barrier.wait()
        outcomes.append(Dispatcher(database, clock).dispatch(AGREE))

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == sorted([Outcome.MOVED] + [Outcome.DUPLICATE] * 9)
    assert count(database, jobs) - count(database, jobs, kind="open_instance") == 1


def locks_of_applications(statements: list[str]) -> list[str]:
    """The locking reads of applications among ``statements``."""
    return [s for s in statements if "FOR UPDATE" in s and "FROM applications" in s]


@pytest.mark.mariadb
def test_an_application_written_while_its_event_is_applied_still_moves(
    pending, database, clock, snapshot_isolation, request
):
    # The form left the configuration, so the event reads the link first (a plain read that
    # takes MySQL's snapshot); then, before the event locks the application, something else
    # writes it. With snapshot isolation the lock is refused (1020), and the whole transaction
    # runs again.
    old_form = ApprovalEvent("pi-0001", "finish", "agree", "http", {"processCode": "PROC-OLD"})
    dispatcher = Dispatcher(snapshot_isolation, clock, process_codes=["PROC-NEW"])
    engine = snapshot_isolation.engine

    def write_first(_conn, _cursor, statement, *_args):
        if locks_of_applications(sent) == [statement]:  # the first lock, about to be taken
            with database.transaction() as other:
                later = clock() + timedelta(seconds=1)  # a write that changes the row
                other.execute(update(applications).values(updated_at=later))

    with statements_sent(engine) as sent:
        sqlalchemy_event.listen(engine, "before_cursor_execute", write_first)
        assert dispatcher.dispatch(old_form) is Outcome.MOVED
    assert count(database, jobs, kind="issue_license") == 1
    runs = 2 if request.node.callspec.params["snapshot_isolation"] == "ON" else 1
    assert len(locks_of_applications(sent)) == runs


@pytest.mark.mariadb
def test_an_event_kept_waiting_on_a_lock_fails_at_once_for_dingtalk_to_push_again(
    pending, database, database_url, clock, monkeypatch
):
    if database.engine.dialect.name != "mysql":
        pytest.skip("SQLite's writers queue for the file instead")
    setting = "SET SESSION innodb_lock_wait_timeout = 1"  # the deployment's is 5 s
    monkeypatch.setitem(MYSQL_CONNECT_ARGS, "init_command", setting)
    waiting = Database(database_url)
    try:
        with database.transaction() as stuck, statements_sent(waiting.engine) as sent:
            stuck.execute(select(applications).with_for_update())  # held, for long
            with pytest.raises(OperationalError):
                Dispatcher(waiting, clock).dispatch(AGREE)
    finally:
        waiting.dispose()
    assert len(locks_of_applications(sent)) == 1  # one wait: DingTalk gave up after 1.5 s


def test_an_event_for_an_instance_no_application_knows_is_held_and_asked_about(
    dispatcher, database
):
    assert (
        dispatcher.dispatch(ApprovalEvent("pi-stranger", "finish", "agree", "http"))
        is Outcome.UNKNOWN_INSTANCE
    )
    assert count(database, approval_events, outcome="unknown_instance") == 1
    assert count(database, jobs) == count(database, jobs, kind="adopt_instance") == 1


def test_a_start_event_is_recorded_and_decides_nothing(pending, dispatcher, api):
    assert (
        dispatcher.dispatch(ApprovalEvent("pi-0001", "start", None, "http")) is Outcome.NO_DECISION
    )
    assert api.get(f"/applications/{pending}").get_json()["status"] == "pending"


def test_a_late_terminate_after_approval_changes_nothing(pending, dispatcher, api, database):
    dispatcher.dispatch(AGREE)
    assert (
        dispatcher.dispatch(ApprovalEvent("pi-0001", "terminate", None, "http"))
        is Outcome.NOT_PENDING
    )
    assert api.get(f"/applications/{pending}").get_json()["status"] == "approved"
    assert count(database, jobs) - count(database, jobs, kind="open_instance") == 1


def test_an_application_is_marked_pending_only_once(pending, database, clock):
    with database.transaction() as connection:
        found = connection.execute(select(applications.c.id)).scalar()
        assert not mark_pending(connection, found, "pi-0002", clock())


def test_storage_refuses_a_move_the_state_machine_lacks_and_changes_nothing(
    api, database, clock, pending
):
    from backend.applications.status import ApplicationStatus
    from backend.exceptions import IllegalTransition
    from backend.storage.applications import by_token, transition

    with database.transaction() as connection:
        found = by_token(connection, pending)
    with pytest.raises(IllegalTransition), database.transaction() as connection:
        transition(
            connection, found.id, ApplicationStatus.PENDING, ApplicationStatus.DELIVERED, clock()
        )
    with database.transaction() as connection:
        assert by_token(connection, pending).status is ApplicationStatus.PENDING


class NoFailedPushes:
    """DingTalk, as the reconciler reads it, with no push it gave up on: our own seam."""

    def failed_callbacks(self) -> tuple[list[dict[str, str]], bool]:
        return [], False


@pytest.mark.mariadb
def test_the_reconciler_applies_held_decisions_though_one_was_applied_meanwhile(
    snapshot_isolation, database, api, clock
):
    for instance_id in ("pi-0002", "pi-0003"):  # decided before any application knew them
        Dispatcher(database, clock).dispatch(ApprovalEvent(instance_id, "finish", "agree", "http"))
        token = api.post("/applications", a_form(email=f"{instance_id}@example.com")).get_json()
        with database.transaction() as connection:
            found = select(applications.c.id).where(applications.c.token == token["token"])
            assert mark_pending(
                connection, connection.execute(found).scalar(), instance_id, clock()
            )

    def adopted() -> None:  # the reconciler has listed them: an adopt job applies one
        with database.transaction() as other:
            assert apply_held(other, "pi-0003", clock())

    reconciler = Reconciler(
        snapshot_isolation,
        NoFailedPushes(),  # type: ignore[arg-type]
        Dispatcher(snapshot_isolation, clock),
        timedelta(hours=1),
        clock,
    )

    def listing(sql: str) -> bool:
        return "GROUP BY approval_events.instance_id" in sql

    with meanwhile(snapshot_isolation.engine, listing, adopted):
        report = reconciler.run()

    assert report.recovered == ["pi-0002"]
    assert count(database, applications, status="approved") == 2
