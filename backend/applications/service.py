"""Taking in applications: validate, rate-limit and store in one transaction."""

import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from backend.applications.status import ApplicationStatus
from backend.applications.validation import ApplicationForm, validate
from backend.catalogue import Catalogue
from backend.exceptions import Conflict, NotFound, RateLimited
from backend.fulfillment.names import OPEN_INSTANCE
from backend.jobs import queue
from backend.storage import rate_limits
from backend.storage.applications import (
    NewApplication,
    by_id,
    by_idempotency_key,
    by_token,
    insert_application,
    timeline,
)
from backend.storage.database import Database
from backend.subjects import Subject
from license.codes import ALPHABET

NUMBER_ATTEMPTS = 3
Answer = dict[str, object]
"""A JSON answer of the applications API."""


@dataclass(frozen=True)
class Submitted:
    """The answer to a submission: the number and status link, and whether it was a replay."""

    number: str
    token: str
    status: ApplicationStatus
    status_url: str
    replayed: bool

    def body(self) -> dict[str, str]:
        """The JSON answer."""
        return {
            "number": self.number,
            "token": self.token,
            "status": self.status.value,
            "status_url": self.status_url,
        }


@dataclass(frozen=True)
class Stored:
    """An application just stored, with the job that opens its approval."""

    number: str
    token: str


@dataclass(frozen=True)
class Limits:
    """How many applications one IP and one email may send per window (seconds)."""

    per_ip: int
    per_email: int
    window: int


log = logging.getLogger(__name__)


class Applications:
    """The applications API's logic, independent of HTTP."""

    def __init__(
        self,
        database: Database,
        catalogue: Catalogue,
        limits: Limits,
        public_base_url: str,
        clock: Callable[[], datetime],
        kick: Callable[[], None] = lambda: None,
    ) -> None:
        self.database, self.catalogue, self.limits = database, catalogue, limits
        self.public_base_url, self.clock = public_base_url, clock
        self.kick = kick

    def submit(self, data: object, client_ip: str, key: str | None = None) -> Submitted:
        """Store a valid application with the job that opens its approval; answer its number.

        With an idempotency ``key`` a repeated submission (the page retrying after a timeout)
        gets the first answer, and is not counted against the limits again.
        """
        form, now = validate(data, self.catalogue), self.clock()
        stored = self._store_once(form, _digest(form), key, client_ip, now)
        if isinstance(stored, Submitted):
            return stored
        # Committed first: whatever happens next (DingTalk down, say), the customer has a number
        # and the job is on record. A runner opens the approval, woken now; the request does
        # not wait for DingTalk, whose limits a crowd of applicants would otherwise run into.
        self._kick()
        status_url = f"{self.public_base_url}/status/{stored.token}"
        return Submitted(
            stored.number, stored.token, ApplicationStatus.SUBMITTED, status_url, replayed=False
        )

    def _store_once(
        self, form: ApplicationForm, digest: str, key: str | None, client_ip: str, now: datetime
    ) -> Stored | Submitted:
        """The newly stored application, or the first answer under ``key``."""
        try:
            stored = self.database.run(lambda c: self._store(c, form, digest, key, client_ip, now))
        except (IntegrityError, RateLimited):
            # The same key, committed by a concurrent twin (which may also have taken the last
            # place in the limits), is answered as it was; anything else is raised as it came.
            replay = self._replay(key, digest) if key is not None else None
            if replay is None:
                raise
            return replay
        if stored is None:  # the key was found: this is a retry
            return self._replay_found(key or "", digest)
        return stored

    def _store(
        self,
        connection: Connection,
        form: ApplicationForm,
        digest: str,
        key: str | None,
        client_ip: str,
        now: datetime,
    ) -> Stored | None:
        """The new application and its job; None if ``key`` was used before."""
        if key is not None and by_idempotency_key(connection, key) is not None:
            return None
        self._count(connection, client_ip, form, int(now.timestamp()))
        new = NewApplication(form, "", secrets.token_urlsafe(24), client_ip, now, key, digest)
        application_id, number = insert_numbered(connection, new)
        subject = Subject.application(application_id)
        queue.enqueue(connection, OPEN_INSTANCE, subject, now, new_subject=True)
        return Stored(number, new.token)

    def _kick(self) -> None:
        try:
            self.kick()
        except Exception:  # the job is on record: the runner's timer takes it, as after any failure
            log.warning("the runner could not be woken; its timer will open it", exc_info=True)

    def _replay(self, key: str, digest: str) -> Submitted | None:
        """The first answer under ``key``; None if no application was stored under it."""
        with self.database.transaction() as connection:
            first = by_idempotency_key(connection, key)
        if first is None:
            return None
        if first.request_hash != digest:
            raise Conflict(
                "该请求标识已用于另一份申请，请刷新页面后重新提交。",
                "This Idempotency-Key was used for a different application; reload the page "
                "and submit again.",
            )
        return self._answer(first.id, replayed=True)

    def _replay_found(self, key: str, digest: str) -> Submitted:
        replay = self._replay(key, digest)
        if replay is None:
            raise RuntimeError(f"the application stored under key {key!r} vanished")
        return replay

    def _answer(self, application_id: int, replayed: bool) -> Submitted:
        with self.database.transaction() as connection:
            application = by_id(connection, application_id)
        if application is None:
            raise RuntimeError(f"application {application_id} vanished after it was stored")
        return Submitted(
            application.number,
            application.token,
            application.status,  # submitted, or pending if DingTalk answered at once
            f"{self.public_base_url}/status/{application.token}",
            replayed,
        )

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


def insert_numbered(connection: Connection, new: NewApplication) -> tuple[int, str]:
    """Store an application under a fresh number; its id and number (redemptions too)."""
    for attempt in range(1, NUMBER_ATTEMPTS + 1):
        numbered = replace(new, number=_new_number(new.at))
        try:
            with connection.begin_nested():  # a clashing number costs only this attempt
                return insert_application(connection, numbered), numbered.number
        except IntegrityError as clash:
            # A concurrent twin under the same key: its answer is the one to give. (Read
            # from the error, since MySQL's snapshot does not show the twin's row yet.)
            if attempt == NUMBER_ATTEMPTS or "idempotency_key" in str(clash.orig):
                raise
    raise AssertionError("unreachable: the last attempt returns or raises")


def _new_number(at: datetime) -> str:
    return f"A{at:%Y%m%d}-{''.join(secrets.choice(ALPHABET) for _ in range(6))}"


def _digest(form: ApplicationForm) -> str:
    """What identifies a submission's content, to tell a retry from a different application."""
    canonical = json.dumps(asdict(form), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
