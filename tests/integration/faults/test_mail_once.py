"""A runner killed in the middle of sending a license mail: the customer gets it exactly once."""

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from backend.storage.schema import mails
from tests.integration.faults.conftest import kill_when
from tests.integration.test_fulfillment import decided

STALL = 5.0  # seconds the mail sandbox holds the conversation, long enough to kill the runner


def mail_row(database):
    with database.transaction() as connection:
        return connection.execute(select(mails)).one()


def after_the_lease(clock) -> None:
    """The killed runner leased the job on the real clock; move past its lease."""
    clock.now = datetime.now(timezone.utc) + timedelta(minutes=6)


def test_killed_after_the_server_accepted_the_mail_is_not_sent_again(
    api, database, clock, runner, mailbox, runner_process
):
    token, _ = decided(api, database, clock)
    runner.run_one()  # issue_license: the license is signed and its mail recorded as work
    mailbox.faults.stall_after_accepting = STALL
    kill_when(lambda: len(mailbox.mailbox.messages) == 1, runner_process())
    assert mail_row(database).handed_over_at is not None and mail_row(database).sent_at is None
    mailbox.faults.stall_after_accepting = 0
    after_the_lease(clock)
    assert runner.run_due() == 1  # the mail job again, taken from the dead runner
    assert len(mailbox.mailbox.messages) == 1
    assert api.get(f"/applications/{token}").get_json()["status"] == "delivered"


def test_killed_before_handing_the_mail_over_sends_it_on_the_next_run(
    api, database, clock, runner, mailbox, runner_process
):
    token, _ = decided(api, database, clock)
    runner.run_one()
    mailbox.faults.stall_before_data = STALL
    process = runner_process()
    kill_when(lambda: mail_row_exists(database), process)
    assert mail_row(database).handed_over_at is None and not mailbox.mailbox.messages
    mailbox.faults.stall_before_data = 0
    after_the_lease(clock)
    assert runner.run_due() == 1
    assert len(mailbox.mailbox.messages) == 1
    assert api.get(f"/applications/{token}").get_json()["status"] == "delivered"


def mail_row_exists(database) -> bool:
    with database.transaction() as connection:
        return connection.execute(select(mails.c.id)).first() is not None


def test_a_mail_the_server_refused_after_the_whole_message_is_sent_again(
    api, database, clock, runner, mailbox
):
    token, _ = decided(api, database, clock)
    mailbox.faults.refuse_after_data = 1  # greylisted: "451, try again later"
    runner.run_due()
    assert not mailbox.mailbox.messages and mail_row(database).handed_over_at is None
    clock.advance(60)
    runner.run_due()
    assert len(mailbox.mailbox.messages) == 1
    assert api.get(f"/applications/{token}").get_json()["status"] == "delivered"
