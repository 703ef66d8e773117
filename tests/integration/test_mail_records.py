"""The record of a mail, read as it stands: a run that finds it must see what others recorded."""

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from backend.storage.mails import MailKind, mail_record, mark_handed_over
from backend.storage.schema import mails
from backend.subjects import Subject

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
ABOUT = Subject.application(7)


def record(connection):
    return mail_record(connection, ABOUT, MailKind.LICENSE, "<license.7@example.com>", "a@b.cn")


def test_a_mail_is_recorded_once_and_found_again(database):
    with database.transaction() as connection:
        first = record(connection)
    with database.transaction() as connection:
        assert record(connection) == first
        assert len(connection.execute(select(mails.c.id)).all()) == 1


@pytest.mark.mariadb
def test_a_mail_handed_over_since_the_transaction_began_is_seen_handed_over(
    database, snapshot_isolation
):
    with database.transaction() as connection:
        mail = record(connection)
    attempts = []

    def read(connection):
        attempts.append(1)
        connection.execute(select(mails.c.id)).all()  # REPEATABLE READ: the snapshot is taken
        if len(attempts) == 1:  # a run that took the job over hands the mail over meanwhile
            with database.transaction() as other:
                assert mark_handed_over(other, mail, NOW)
        return record(connection)

    # Database.run, as the mail jobs read it: snapshot isolation rolls the first read back.
    assert snapshot_isolation.run(read).handed_over_at == NOW  # so it is not sent again


def test_a_mail_handed_over_is_not_handed_over_again(database):
    with database.transaction() as connection:
        mail = record(connection)
        assert mark_handed_over(connection, mail, NOW)
        assert not mark_handed_over(connection, mail, NOW)  # another run's, stale, is refused
