"""Taking in applications: validate, rate-limit and store in one transaction."""

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from backend.applications.validation import ApplicationForm, validate
from backend.catalogue import Catalogue
from backend.exceptions import NotFound, RateLimited
from backend.fulfillment.instances import OPEN_INSTANCE
from backend.jobs import queue
from backend.storage import rate_limits
from backend.storage.applications import (
    NewApplication,
    by_token,
    insert_application,
    status_of,
    timeline,
)
from backend.storage.database import Database
from backend.subjects import Subject
from license.codes import ALPHABET

NUMBER_ATTEMPTS = 3
Answer = dict[str, object]
"""A JSON answer of the applications API."""


@dataclass(frozen=True)
class Limits:
    """How many applications one IP and one email may send per window (seconds)."""

    per_ip: int
    per_email: int
    window: int


class Applications:
    """The applications API's logic, independent of HTTP."""

    def __init__(
        self,
        database: Database,
        catalogue: Catalogue,
        limits: Limits,
        public_base_url: str,
        clock: Callable[[], datetime],
        run_now: Callable[[int], object] | None = None,
    ) -> None:
        self.database, self.catalogue, self.limits = database, catalogue, limits
        self.public_base_url, self.clock = public_base_url, clock
        self.run_now = run_now

    def submit(self, data: object, client_ip: str) -> dict[str, str]:
        """Store a valid application with the job that opens its approval; answer its number."""
        form, now = validate(data, self.catalogue), self.clock()
        token = secrets.token_urlsafe(24)
        with self.database.transaction() as connection:
            self._count(connection, client_ip, form, int(now.timestamp()))
            application_id, number = self._insert(connection, form, token, client_ip, now)
            subject = Subject.application(application_id)
            job_id = queue.enqueue(connection, OPEN_INSTANCE, subject, now)
        # Committed first: whatever happens next (DingTalk down, say), the customer has a number
        # and the job is on record. Running it now, under its lease, is the fast path.
        if self.run_now is not None and job_id is not None:
            self.run_now(job_id)
        with self.database.transaction() as connection:
            status = status_of(connection, application_id)
        return {
            "number": number,
            "token": token,
            "status": str(status),  # submitted, or pending if DingTalk answered at once
            "status_url": f"{self.public_base_url}/status/{token}",
        }

    def status(self, token: str) -> Answer:
        """Where an application stands, with what the applicant typed and nothing more."""
        with self.database.transaction() as connection:
            found = by_token(connection, token)
            entries = timeline(connection, found.id) if found else []
        if found is None:
            raise NotFound("找不到该申请。", "No application has this status link.")
        product = self.catalogue.get(found.product)
        return {
            "number": found.number,
            "status": found.status.value,
            "product": found.product,
            "product_names": dict(product.names) if product else None,
            "company": found.company,
            "quantity": found.quantity,
            "validity": found.validity,
            "timeline": [{"status": e.status.value, "at": e.at.isoformat()} for e in entries],
        }

    def _count(
        self, connection: Connection, client_ip: str, form: ApplicationForm, now: int
    ) -> None:
        window = self.limits.window
        for key, limit in (
            (f"ip:{client_ip}", self.limits.per_ip),
            (f"email:{form.email.lower()}", self.limits.per_email),
        ):
            wait = rate_limits.hit(connection, key, limit, window, now)
            if wait is not None:
                raise RateLimited(wait)

    def _insert(
        self,
        connection: Connection,
        form: ApplicationForm,
        token: str,
        client_ip: str,
        now: datetime,
    ) -> tuple[int, str]:
        """Store the application under a fresh number; its id and number."""
        for _ in range(NUMBER_ATTEMPTS - 1):
            try:
                with connection.begin_nested():  # a clashing number costs only this attempt
                    return self._insert_once(connection, form, token, client_ip, now)
            except IntegrityError:
                continue
        return self._insert_once(connection, form, token, client_ip, now)

    @staticmethod
    def _insert_once(
        connection: Connection, form: ApplicationForm, token: str, client_ip: str, now: datetime
    ) -> tuple[int, str]:
        number = f"A{now:%Y%m%d}-{''.join(secrets.choice(ALPHABET) for _ in range(6))}"
        new = NewApplication(form, number, token, client_ip, now)
        return insert_application(connection, new), number
