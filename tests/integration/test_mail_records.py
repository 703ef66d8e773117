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
def test_a_mail_handed_over_since_the_transaction_began_is_seen_handed_over(database):
    if database.engine.dialect.name != "mysql":
        pytest.skip("SQLite's writers take turns: nothing changes under a transaction")
    with database.transaction() as connection:
        mail = record(connection)
    with database.transaction() as connection:
        connection.execute(select(mails.c.id)).all()  # REPEATABLE READ: the snapshot is taken
        # Meanwhile a run that took the job over (its lease ran out) hands the mail over.
        with database.transaction() as other:
            mark_handed_over(other, mail, NOW)
        assert record(connection).handed_over_at == NOW  # so this run does not send it again
