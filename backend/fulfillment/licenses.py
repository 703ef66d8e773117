"""issue_license: sign the license an approved application asked for, once."""

from datetime import datetime
from typing import Any

from backend.catalogue import VALIDITIES
from backend.fulfillment.context import Fulfillment
from backend.jobs import queue
from backend.jobs.model import Done, Job
from backend.storage.applications import by_id, transition
from backend.storage.licenses import license_of, store_license
from license import License, Licensee, new_license_id


def issue_license(ctx: Fulfillment, job: Job) -> Done:
    """Sign and store the license, move approved -> issued, and record the mail to send."""
    now = ctx.clock().replace(microsecond=0)
    with ctx.database.transaction() as connection:
        application = by_id(connection, job.application_id)
        if application is None:
            raise LookupError(f"application {job.application_id} does not exist")
        if license_of(connection, job.application_id) is None:
            issuer = ctx.issuer()
            terms = _terms(ctx, application, now)
            text = issuer.sign(terms)
            store_license(
                connection,
                {
                    "id": terms.id,
                    "application_id": job.application_id,
                    "key_id": issuer.key_id,
                    "text": text,
                    "issued_at": now,
                    "valid_until": terms.valid_until,
                },
            )
        transition(connection, job.application_id, "approved", "issued", now)
        queue.enqueue(connection, "send_license_mail", job.application_id, now)
    ctx.kick()
    return Done()


def _terms(ctx: Fulfillment, application: dict[str, Any], now: datetime) -> License:
    product = ctx.catalogue.get(application["product"])
    if product is None:
        raise LookupError(f"product {application['product']!r} is no longer in the catalogue")
    length = VALIDITIES[application["validity"]]
    return License(
        id=new_license_id(now),
        product=product.code,
        edition=product.edition,
        licensee=Licensee(application["company"], application["contact"], application["email"]),
        feature_code=application["feature_code"],
        quantity=application["quantity"],
        issued_at=now,
        valid_from=now,
        valid_until=None if length is None else now + length,
        entitlements=product.entitlements,
        application=application["number"],
    )
