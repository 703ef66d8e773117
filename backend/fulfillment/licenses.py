"""issue_license: sign the license an approved application asked for, once."""

from datetime import datetime

from backend.applications.status import ApplicationStatus
from backend.catalogue import validity_length
from backend.fulfillment.instances import application_of
from backend.fulfillment.names import ISSUE_LICENSE, SEND_LICENSE_MAIL
from backend.jobs import queue
from backend.jobs.model import Done, Job
from backend.jobs.registry import Registry
from backend.services import Services
from backend.storage.applications import Application, by_id, transition
from backend.storage.licenses import IssuedLicense, license_of, store_license
from backend.subjects import Subject
from license import License, Licensee, new_license_id

kinds: Registry[Services] = Registry()


@kinds.kind(ISSUE_LICENSE)
def issue_license(services: Services, job: Job) -> Done:
    """Sign and store the license, move approved -> issued, and record the mail to send."""
    now = services.clock().replace(microsecond=0)
    application_id = application_of(job)
    with services.database.transaction() as connection:
        application = by_id(connection, application_id)
        if application is None:
            raise LookupError(f"application {application_id} does not exist")
        if license_of(connection, application_id) is None:
            store_license(connection, _sign(services, application, now))
        transition(
            connection, application_id, ApplicationStatus.APPROVED, ApplicationStatus.ISSUED, now
        )
        mail = queue.enqueue(
            connection, SEND_LICENSE_MAIL, Subject.application(application_id), now
        )
    services.kick()
    return Done(then=mail)


def _sign(services: Services, application: Application, now: datetime) -> IssuedLicense:
    issuer = services.issuer()
    terms = _terms(services, application, now)
    return IssuedLicense(
        id=terms.id,
        application_id=application.id,
        key_id=issuer.key_id,
        text=issuer.sign(terms),
        issued_at=now,
        valid_until=terms.valid_until,
    )


def _terms(services: Services, application: Application, now: datetime) -> License:
    product = services.catalogue.get(application.product)
    if product is None:
        raise LookupError(f"product {application.product!r} is no longer in the catalogue")
    length = validity_length(application.validity)
    return License(
        id=new_license_id(now),
        product=product.code,
        edition=product.edition,
        licensee=Licensee(application.company, application.contact, application.email),
        feature_code=application.feature_code,
        quantity=application.quantity,
        issued_at=now,
        valid_from=now,
        valid_until=None if length is None else now + length,
        entitlements=product.entitlements,
        application=application.number,
    )
