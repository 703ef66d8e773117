"""Taking in applications: validate, rate-limit and store in one transaction."""

import functools
import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
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
    by_idempotency_key,
    by_token,
    form_values,
    insert_application,
    timeline,
)
from backend.storage.database import Database
from backend.subjects import Subject
from license.codes import ALPHABET

NUMBER_ATTEMPTS = 3
NUMBER_SYMBOLS = 6
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
class Submission:
    """One valid submission: the form, what identifies its content, who sent it and when."""

    form: ApplicationForm
    digest: str
    key: str | None
    client_ip: str
    at: datetime


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
        form = validate(data, self.catalogue)
        stored = self._store_once(Submission(form, _digest(form), key, client_ip, self.clock()))
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

    def _store_once(self, submission: Submission) -> Stored | Submitted:
        """The newly stored application, or the first answer under the submission's key."""
        key, digest = submission.key, submission.digest
        try:
            return self._store_numbered(submission)
        except (IntegrityError, RateLimited):
            # A key used before, by a retry or by a concurrent twin (which may also have taken
            # the last place in the limits), is answered as it was the first time: its unique
            # index refused the insert, and the rollback uncounted the limits. Not looked up
            # first: that would cost every application a query, to spare the few retries one
            # rolled-back transaction. Anything else is raised as it came.
            replay = self._replay(key, digest) if key is not None else None
            if replay is None:
                raise
            return replay

    def _store_numbered(self, submission: Submission) -> Stored:
        """_store under a fresh number, its whole transaction run again under another if the
        number was taken.

        Whole, not a savepoint around the insert: that would cost every application two round
        trips, to spare a rerun of a few statements on a clash, whose odds are one in a billion
        for each application numbered earlier that day.
        """
        for attempt in range(1, NUMBER_ATTEMPTS + 1):
            number = _new_number(submission.at)
            try:
                return self.database.run(functools.partial(self._store, submission, number))
            except IntegrityError as clash:
                if attempt == NUMBER_ATTEMPTS or not _number_taken(clash):
                    raise
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _store(self, submission: Submission, number: str, connection: Connection) -> Stored:
        """The new application under ``number``, and its job."""
        form, key, now = submission.form, submission.key, submission.at
        self._count(connection, submission.client_ip, form, int(now.timestamp()))
        token = secrets.token_urlsafe(24)
        new = NewApplication(form, number, token, submission.client_ip, now, key, submission.digest)
        subject = Subject.application(insert_application(connection, new))
        queue.enqueue(connection, OPEN_INSTANCE, subject, now, new_subject=True)
        return Stored(number, token)

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
        return Submitted(
            first.number,
            first.token,
            first.status,  # where it stands now: submitted, or on past it meanwhile
            f"{self.public_base_url}/status/{first.token}",
            replayed=True,
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
        counters = [  # in this order always: see rate_limits.hit_all
            (f"ip:{client_ip}", self.limits.per_ip),
            (f"email:{form.email.lower()}", self.limits.per_email),
        ]
        wait = rate_limits.hit_all(connection, counters, self.limits.window, now)
        if wait is not None:
            raise RateLimited(wait)


def insert_numbered(connection: Connection, new: NewApplication) -> tuple[int, str]:
    """Store an application under a fresh number, in a savepoint per attempt; its id and
    number (for redemptions: intake runs its whole transaction again instead).

    Only a taken number is drawn again; any other clash (a twin under the same key, whose
    answer is the one) is raised as it came, as intake's is.
    """
    for attempt in range(1, NUMBER_ATTEMPTS + 1):
        numbered = replace(new, number=_new_number(new.at))
        try:
            with connection.begin_nested():  # a clashing number costs only this attempt
                return insert_application(connection, numbered), numbered.number
        except IntegrityError as clash:
            if attempt == NUMBER_ATTEMPTS or not _number_taken(clash):
                raise
    raise AssertionError("unreachable: the last attempt returns or raises")


def _number_taken(clash: IntegrityError) -> bool:
    """Whether an insert clashed with an application under the same number: MySQL names the
    unique key (uq_applications_number, schema.py's naming convention), SQLite the column."""
    error = str(clash.orig)
    return "uq_applications_number" in error or "applications.number" in error


def _new_number(at: datetime) -> str:
    # Five random bits a symbol, from one draw: the alphabet has 32 symbols, so each is as
    # likely as any other.
    bits = secrets.randbits(5 * NUMBER_SYMBOLS)
    symbols = "".join(ALPHABET[(bits >> (5 * i)) & 31] for i in range(NUMBER_SYMBOLS))
    return f"A{at:%Y%m%d}-{symbols}"


def _digest(form: ApplicationForm) -> str:
    """What identifies a submission's content, to tell a retry from a different application."""
    canonical = json.dumps(form_values(form), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
