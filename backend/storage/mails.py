"""The mails sent about a subject: one of each kind, under a Message-ID that never changes."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, RowMapping, select, update

from backend.compat import StrEnum
from backend.storage.schema import mails
from backend.storage.unique import insert_if_absent
from backend.subjects import Subject


class MailKind(StrEnum):
    """Which mail about its subject this is; one of each is ever sent."""

    LICENSE = "license"
    REFUSAL = "refusal"
    EXPIRY_REMINDER = "expiry_reminder"  # one per license and threshold: its subject says which


@dataclass(frozen=True)
class Mail:
    """A mail to send, or sent: to whom, under which Message-ID, and when the server took it."""

    id: int
    subject: Subject
    kind: str
    message_id: str
    recipient: str
    handed_over_at: datetime | None
    sent_at: datetime | None

    @classmethod
    def from_row(cls, row: RowMapping) -> "Mail":
        """From a mails row."""
        subject = Subject(row["subject_type"], row["subject_id"])
        return cls(
            row["id"],
            subject,
            row["kind"],
            row["message_id"],
            row["recipient"],
            row["handed_over_at"],
            row["sent_at"],
        )


def mail_record(
    connection: Connection, subject: Subject, kind: MailKind, message_id: str, recipient: str
) -> Mail:
    """The record of the mail of ``kind`` about ``subject``, made on first use."""
    where = (
        mails.c.subject_type == subject.type,
        mails.c.subject_id == subject.id,
        mails.c.kind == kind,
    )
    row = {
        "subject_type": subject.type,
        "subject_id": subject.id,
        "kind": kind,
        "message_id": message_id,
        "recipient": recipient,
    }
    insert_if_absent(connection, mails, row)  # or it was made before: by an earlier run, say
    # A locking read: MySQL's plain one shows the row as of the transaction's first read, and
    # a run that took the job over since (its lease ran out) may have handed the mail over
    # meanwhile. MariaDB with innodb_snapshot_isolation refuses the read instead (1020, the
    # transaction rolled back): callers read in Database.run, which runs it again. SQLite's
    # writers take turns.
    query = select(mails).where(*where).with_for_update(read=True)
    return Mail.from_row(connection.execute(query).mappings().one())


def mark_handed_over(connection: Connection, mail: Mail, at: datetime) -> bool:
    """Record that the whole message is with the server, about to be committed; False if a run
    of its own had recorded that first (or the mail as sent), and it must not go out again."""
    unsent = (mails.c.id == mail.id, mails.c.handed_over_at.is_(None), mails.c.sent_at.is_(None))
    changed = connection.execute(update(mails).where(*unsent).values(handed_over_at=at))
    return changed.rowcount == 1


def mark_refused(connection: Connection, mail: Mail) -> None:
    """Record that the server refused the mail this run had handed over: it may go again."""
    connection.execute(update(mails).where(mails.c.id == mail.id).values(handed_over_at=None))


def mark_sent(connection: Connection, mail: Mail, at: datetime) -> None:
    """Record that the mail server accepted the mail."""
    connection.execute(
        update(mails).where(mails.c.id == mail.id, mails.c.sent_at.is_(None)).values(sent_at=at)
    )
