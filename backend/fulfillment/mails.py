"""send_license_mail and send_refusal_mail: each mailed once, even when a job runs again."""

from typing import Any

from backend.fulfillment.context import Fulfillment
from backend.jobs.model import Done, Job
from backend.mail.compose import Attachment, compose
from backend.storage.applications import by_id, transition
from backend.storage.licenses import license_of, mail_record, mark_sent
from license import decode_unverified
from license.verifier import format_time


def send_license_mail(ctx: Fulfillment, job: Job) -> Done:
    """Mail the license to the applicant; issued -> delivered once the server accepted it."""
    with ctx.database.transaction() as connection:
        application = _application(connection, job)
        stored = license_of(connection, job.application_id)
        if stored is None:
            raise LookupError(f"application {application['number']} has no license to send yet")
        record = mail_record(
            connection,
            job.application_id,
            "license",
            _message_id(ctx, "license", stored.id),
            application["email"],
        )
    if record.sent_at is None:
        lic = decode_unverified(stored.text)
        facts = {
            **_common(ctx, application),
            "edition": lic.edition,
            "feature_code": lic.feature_code,
            "quantity": lic.quantity,
            "license_id": lic.id,
            "valid_from": format_time(lic.valid_from)[:10],
            "valid_until": lic.valid_until and format_time(lic.valid_until)[:10],
            "filename": f"{lic.product}-{lic.id}.lic",
        }
        attachment = Attachment(facts["filename"], stored.text.encode(), "text", "plain")
        _send(
            ctx,
            record,
            compose(
                "license",
                application["language"],
                facts,
                sender=ctx.mail_from,
                recipient=record.recipient,
                message_id=record.message_id,
                attachment=attachment,
            ),
        )
    with ctx.database.transaction() as connection:
        transition(connection, job.application_id, "issued", "delivered", ctx.clock())
    return Done()


def send_refusal_mail(ctx: Fulfillment, job: Job) -> Done:
    """Tell the applicant their application was refused or withdrawn."""
    with ctx.database.transaction() as connection:
        application = _application(connection, job)
        record = mail_record(
            connection,
            job.application_id,
            "refusal",
            _message_id(ctx, "refusal", application["number"]),
            application["email"],
        )
    if record.sent_at is None:
        facts = {**_common(ctx, application), "status": application["status"]}
        _send(
            ctx,
            record,
            compose(
                "refusal",
                application["language"],
                facts,
                sender=ctx.mail_from,
                recipient=record.recipient,
                message_id=record.message_id,
            ),
        )
    return Done()


def _send(ctx: Fulfillment, record: Any, message: Any) -> None:
    ctx.sender.send(message)
    # Recorded the moment the server accepted it: a job run again after this never mails twice.
    with ctx.database.transaction() as connection:
        mark_sent(connection, record.id, ctx.clock())


def _application(connection: Any, job: Job) -> dict[str, Any]:
    application = by_id(connection, job.application_id)
    if application is None:
        raise LookupError(f"application {job.application_id} does not exist")
    return application


def _common(ctx: Fulfillment, application: dict[str, Any]) -> dict[str, Any]:
    product = ctx.catalogue.get(application["product"])
    language = "zh" if application["language"] != "en" else "en"
    name = product.names[language] if product else application["product"]
    return {
        "contact": application["contact"],
        "company": application["company"],
        "number": application["number"],
        "product_name": name,
    }


def _message_id(ctx: Fulfillment, kind: str, key: str) -> str:
    """A stable Message-ID: the same mail keeps the same id however often it is sent."""
    domain = ctx.mail_from.rsplit("@", 1)[-1].rstrip(">").strip() or "dingpass.localhost"
    return f"<{kind}.{key}@{domain}>"
