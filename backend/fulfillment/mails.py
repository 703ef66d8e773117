"""send_license_mail and send_refusal_mail: each mailed once, even when a job runs again."""

import functools
import logging
import smtplib

from sqlalchemy import Connection

from backend.applications.status import ApplicationStatus
from backend.fulfillment.instances import application_of
from backend.fulfillment.names import SEND_LICENSE_MAIL, SEND_REFUSAL_MAIL
from backend.jobs.model import OUTAGE_RETRY, Done, Job
from backend.jobs.registry import Registry
from backend.mail.compose import Attachment, Facts, compose
from backend.mail.message import Message
from backend.robots.events import RobotEvent
from backend.robots.notify import notify
from backend.services import Services
from backend.storage.applications import Application, by_id, transition
from backend.storage.licenses import IssuedLicense, license_of
from backend.storage.mails import (
    Mail,
    MailKind,
    mail_record,
    mark_handed_over,
    mark_refused,
    mark_sent,
)
from backend.subjects import Subject
from license import decode_unverified
from license.verifier import format_time

log = logging.getLogger(__name__)
kinds: Registry[Services] = Registry()
DELIVERED, REFUSAL = RobotEvent.LICENSE_DELIVERED, RobotEvent.REFUSAL


@kinds.kind(SEND_LICENSE_MAIL, retry=OUTAGE_RETRY)
def send_license_mail(services: Services, job: Job) -> Done:
    """Mail the license to the applicant; issued -> delivered once the server accepted it."""
    application_id = application_of(job)
    # Run again if MariaDB finds the mail's record changed since the snapshot (mail_record).
    work = functools.partial(_license_mail, services, application_id)
    application, stored, mail = services.database.run(work)
    if mail.sent_at is None:
        send_once(services, mail, _license_message(services, application, stored, mail))
    with services.database.transaction() as connection:
        delivered = (ApplicationStatus.ISSUED, ApplicationStatus.DELIVERED, services.clock())
        transition(connection, application_id, *delivered)
        notify(connection, services.robots.robots, DELIVERED, _about(application), delivered[2])
    return Done()


@kinds.kind(SEND_REFUSAL_MAIL, retry=OUTAGE_RETRY)
def send_refusal_mail(services: Services, job: Job) -> Done:
    """Tell the applicant their application was refused or withdrawn."""
    work = functools.partial(_refusal_mail, services, application_of(job))
    application, mail = services.database.run(work)  # as send_license_mail's
    if mail.sent_at is None:
        facts: Facts = {**_common(services, application), "status": application.status.value}
        send_once(services, mail, _message(services, MailKind.REFUSAL, application, mail, facts))
    return Done()


def _license_mail(
    services: Services, application_id: int, connection: Connection
) -> tuple[Application, IssuedLicense, Mail]:
    """The application, its license, and the record of the mail that carries it."""
    application = _application(connection, application_id)
    stored = license_of(connection, application_id)
    if stored is None:
        raise LookupError(f"application {application.number} has no license to send yet")
    return (
        application,
        stored,
        _record(connection, services, application, MailKind.LICENSE, stored.id),
    )


def _refusal_mail(
    services: Services, application_id: int, connection: Connection
) -> tuple[Application, Mail]:
    """The application and the record of its refusal mail; the robots are told, too."""
    application = _application(connection, application_id)
    mail = _record(connection, services, application, MailKind.REFUSAL, application.number)
    notify(connection, services.robots.robots, REFUSAL, _about(application), services.clock())
    return application, mail


def _license_message(
    services: Services, application: Application, stored: IssuedLicense, mail: Mail
) -> Message:
    lic = decode_unverified(stored.text)
    filename = f"{lic.product}-{lic.id}.lic"
    facts: Facts = {
        **_common(services, application),
        "edition": lic.edition,
        "feature_code": lic.feature_code,
        "quantity": lic.quantity,
        "license_id": lic.id,
        "valid_from": format_time(lic.valid_from)[:10],
        "valid_until": format_time(lic.valid_until)[:10] if lic.valid_until else None,
        "filename": filename,
    }
    # The file is text with a company's name in its summary lines, so it is UTF-8 and says so:
    # without a charset, mail clients (and the inbox's download) read it as ASCII.
    attachment = Attachment(filename, stored.text.encode(), "text", "plain", charset="utf-8")
    return _message(services, MailKind.LICENSE, application, mail, facts, attachment)


def _message(
    services: Services,
    kind: MailKind,
    application: Application,
    mail: Mail,
    facts: Facts,
    attachment: Attachment | None = None,
) -> Message:
    return compose(
        kind,
        application.language,
        facts,
        sender=services.mail_from,
        recipient=mail.recipient,
        message_id=mail.message_id,
        attachment=attachment,
    )


class _HandedOverElsewhere(Exception):
    """Another run of the same job (one whose lease ran out, thawed) handed the mail over first."""


def send_once(services: Services, mail: Mail, message: Message) -> None:
    """Send, once: a mail an earlier run handed over in full is never sent again."""
    if mail.handed_over_at is not None:
        # That run died (or lost the connection) after the server had the whole message and
        # before its answer was recorded; servers accept nearly always at that point, and
        # sending again would mail the customer twice. `dingpass mails` tells the two apart.
        log.warning(
            "mail %s was handed over at %s; taken as sent", mail.message_id, mail.handed_over_at
        )
        return
    handed_over = False

    def hand_over() -> None:
        nonlocal handed_over
        _hand_over(services, mail)
        handed_over = True

    try:
        services.sender.send(message, mail.recipient, hand_over)
    except _HandedOverElsewhere:
        log.warning("mail %s handed over by another run meanwhile; taken as sent", mail.message_id)
        return
    except smtplib.SMTPResponseException:
        # The server answered, and the answer was no (after the message too: greylisting, a
        # full mailbox): nothing was accepted, so the next run must send it again.
        if handed_over:  # by this run: another's hand-over is not this run's to take back
            with services.database.transaction() as connection:
                mark_refused(connection, mail)
        raise
    with services.database.transaction() as connection:
        mark_sent(connection, mail, services.clock())


def _hand_over(services: Services, mail: Mail) -> None:
    """Record the hand-over before the server may commit the mail; the server never gets the
    end of the message if another run recorded its own first (SmtpSender.send abandons it)."""
    with services.database.transaction() as connection:
        if not mark_handed_over(connection, mail, services.clock()):
            raise _HandedOverElsewhere(mail.message_id)


def _record(
    connection: Connection, services: Services, application: Application, kind: MailKind, key: str
) -> Mail:
    message_id = stable_message_id(services, kind, key)
    subject = Subject.application(application.id)
    return mail_record(connection, subject, kind, message_id, application.email)


def _about(application: Application) -> Subject:
    return Subject.application(application.id)


def _application(connection: Connection, application_id: int) -> Application:
    application = by_id(connection, application_id)
    if application is None:
        raise LookupError(f"application {application_id} does not exist")
    return application


def _common(services: Services, application: Application) -> Facts:
    product = services.catalogue.get(application.product)
    language = "zh" if application.language != "en" else "en"
    return {
        "contact": application.contact,
        "company": application.company,
        "number": application.number,
        "product_name": product.names[language] if product else application.product,
    }


def stable_message_id(services: Services, kind: str, key: str) -> str:
    """A stable Message-ID: the same mail keeps the same id however often it is sent."""
    domain = services.mail_from.rsplit("@", 1)[-1].rstrip(">").strip() or "dingpass.localhost"
    return f"<{kind}.{key}@{domain}>"
