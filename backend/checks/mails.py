"""send_expiry_reminder: the licensee's reminder mail, sent once per license and threshold."""

import functools
from typing import Any

from sqlalchemy import Connection

from backend.checks.expiring import SEND_EXPIRY_REMINDER, renewed
from backend.checks.facts import expiry_facts
from backend.fulfillment.mails import send_once, stable_message_id
from backend.jobs.model import OUTAGE_RETRY, Done, Job
from backend.jobs.registry import Registry
from backend.mail.compose import compose
from backend.services import Services
from backend.storage.applications import Application, by_id
from backend.storage.mails import Mail, MailKind, mail_record
from backend.storage.schema import licenses
from backend.subjects import Subject, SubjectType

kinds: Registry[Services] = Registry()


@kinds.kind(SEND_EXPIRY_REMINDER, retry=OUTAGE_RETRY)
def send_expiry_reminder(services: Services, job: Job) -> Done:
    """Mail the licensee that the license ends soon, with a link to renew it."""
    if job.subject is None or job.subject.type != SubjectType.LICENSE:
        raise ValueError(f"a job about {job.subject} was given to {SEND_EXPIRY_REMINDER}")
    license_id, days = job.subject.id, int(str(job.payload["days"]))
    # Run again if MariaDB finds the mail's record changed since the snapshot (mail_record).
    found = services.database.run(functools.partial(_reminder, services, license_id, days))
    if found is None:  # renewed since the reminder was recorded
        return Done()
    application, facts, mail = found
    if mail.sent_at is None:
        message = compose(
            MailKind.EXPIRY_REMINDER,
            application.language,
            {key: value for key, value in facts.items() if not isinstance(value, dict)},
            sender=services.mail_from,
            recipient=mail.recipient,
            message_id=mail.message_id,
        )
        send_once(services, mail, message)
    return Done()


def _reminder(
    services: Services, license_id: str, days: int, connection: Connection
) -> tuple[Application, dict[str, Any], Mail] | None:
    """The licensee, what the mail tells, and its record; None if the license was renewed."""
    row = (
        connection.execute(licenses.select().where(licenses.c.id == license_id))
        .mappings()
        .one_or_none()
    )
    application = by_id(connection, row["application_id"]) if row else None
    if row is None or application is None or row["valid_until"] is None:
        raise LookupError(f"license {license_id} (or its application) does not exist")
    if renewed(connection, license_id):  # since the reminder was recorded
        return None
    facts = expiry_facts(services, application, license_id, row["valid_until"], days)
    message_id = stable_message_id(services, "expiry_reminder", f"{license_id}.{days}")
    about = Subject(SubjectType.LICENSE, f"{license_id}.{days}")
    kind = MailKind.EXPIRY_REMINDER
    return application, facts, mail_record(connection, about, kind, message_id, application.email)
