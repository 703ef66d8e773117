"""Redeeming an activation code: an approved application in the one transaction that takes it.

The code is parsed first (a typo is answered without a query), then the form is checked as an
application's, without its terms: the quantity and validity are the batch's. One transaction
looks the code up, takes it with a conditional UPDATE (of any number of redeemers, exactly one
is let through), stores the application as approved by the code and records the job that
signs and mails its license. Failures are counted per client (an IP, or a partner app) and per
feature code (backend.codes.throttle), so guessing is throttled.
"""

import hashlib
import ipaddress
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

from backend.applications.service import Submitted, insert_numbered
from backend.applications.status import ApplicationStatus
from backend.applications.validation import ApplicationForm, validate
from backend.apps.store import ApiApp
from backend.catalogue import Catalogue
from backend.codes.hashing import code_hash
from backend.codes.lookup import CodeState, Lookup, canonical, look_up
from backend.codes.refusals import (
    CodeDeleted,
    CodeExpired,
    CodeForAnotherProduct,
    CodeMalformed,
    CodeNotYetValid,
    CodeRefused,
    CodeUnknown,
    CodeUsed,
)
from backend.codes.throttle import RedeemLimits, Throttle
from backend.exceptions import BadRequest, Conflict
from backend.fulfillment.names import ISSUE_LICENSE
from backend.jobs import queue
from backend.storage import codes as store
from backend.storage.applications import (
    NewApplication,
    by_id,
    by_idempotency_key,
    status_of,
    transition,
)
from backend.storage.database import Database
from backend.storage.rate_limits import Counter
from backend.subjects import Subject
from license.exceptions import ActivationCodeError

TERMS = ("quantity", "validity")
"""Fields of the apply form a redemption takes from the batch, ignored if the form has them."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Redeemer:
    """Who redeems: the name recorded on the code, and the counter its failures go to."""

    name: str
    client_ip: str
    counter: str
    limit: int
    app_id: int | None = None
    """A partner app redeems only codes of its own batches; None: the QR page, any code."""


@dataclass(frozen=True)
class Attempt:
    """A checked redemption request: the form (terms to come), the code, and who sends it."""

    form: ApplicationForm
    code: str
    redeemer: Redeemer
    key: str | None
    digest: str


@dataclass(frozen=True)
class Stored:
    """A redemption just committed: its application, and the job that signs its license."""

    id: int
    number: str
    token: str
    job_id: int


class Redemptions:
    """Redeeming codes for the QR page and for partners, independent of HTTP."""

    def __init__(
        self,
        database: Database,
        catalogue: Catalogue,
        key: Callable[[], bytes],
        limits: RedeemLimits,
        clock: Callable[[], datetime],
        public_base_url: str,
        run_now: Callable[[int], object] | None = None,
        kick: Callable[[], None] | None = None,
    ) -> None:
        """``key`` gives the codes' hash key (read on first use: see backend.codes.hashing)."""
        self.database, self.catalogue, self.key, self.limits = database, catalogue, key, limits
        self.clock, self.public_base_url = clock, public_base_url
        self.throttle = Throttle(database, limits.window, clock)
        self.run_now, self.kick = run_now, kick

    def redeem(
        self,
        form_data: object,
        code_text: object,
        redeemed_by: str,
        client_ip: str,
        idempotency_key: str | None = None,
    ) -> Submitted:
        """Redeem a code typed on the QR page: an approved application, its license on the way.

        Raises CodeRefused (422, field ``code``), ValidationError for the form, TooManyFailures
        (429) once the client IP or the feature code failed too often, Conflict (409) for an
        idempotency key used with another request. A request repeated under its key gets the
        first answer.
        """
        counter = f"redeem-ip:{address_group(client_ip)}"
        redeemer = Redeemer(redeemed_by, client_ip, counter, self.limits.per_ip)
        return self._redeem(form_data, code_text, redeemer, idempotency_key)

    def redeem_for_app(
        self,
        form_data: object,
        code_text: object,
        app: ApiApp,
        client_ip: str,
        request_id: str | None = None,
    ) -> Submitted:
        """Redeem a code for a partner's customer: as redeem, throttled per app, and repeated
        safely under the app's own ``request_id`` (its key, kept apart from other apps')."""
        counter = f"redeem-app:{app.id}"
        redeemer = Redeemer(app.name, client_ip, counter, self.limits.per_app, app.id)
        key = None if request_id is None else f"app{app.id}:{request_id}"
        return self._redeem(form_data, code_text, redeemer, key)

    def _redeem(
        self, form_data: object, code_text: object, redeemer: Redeemer, key: str | None
    ) -> Submitted:
        attempt = self._check(form_data, code_text, redeemer, key)
        counters = self._counters(attempt)
        self.throttle.charge(counters)  # counted first: given back below unless it failed
        try:
            stored = self.database.run(lambda connection: self._store(connection, attempt))
        except (CodeRefused, IntegrityError) as refused:
            # A twin under the same key (the page retrying) redeemed it: its answer is ours.
            replay = self._replay(attempt) if key is not None else None
            if replay is not None or not isinstance(refused, CodeRefused):
                self.throttle.give_back(counters)
            if replay is not None:
                return replay
            if isinstance(refused, TakenMeanwhile):
                raise self._refusal_now(attempt) from None
            raise
        self.throttle.give_back(counters)
        if stored is None:  # the key was found: this is a retry
            return self._replay_found(attempt)
        self._issue_now(stored.job_id)
        return self._fresh_answer(stored)

    def _check(
        self, form_data: object, code_text: object, redeemer: Redeemer, key: str | None
    ) -> Attempt:
        """The request checked without a query: the code's check symbol, then the form."""
        if not isinstance(code_text, str) or not code_text.strip():
            raise CodeMalformed("")
        try:
            code = canonical(code_text)
        except ActivationCodeError:
            raise CodeMalformed(code_text) from None
        form = customer_form(form_data, self.catalogue)
        return Attempt(form, code, redeemer, key, self._digest(form, code))

    def _store(self, connection: Connection, attempt: Attempt) -> Stored | None:
        """Take the code, store its approved application and license job; None if the key
        was used before."""
        if attempt.key is not None and by_idempotency_key(connection, attempt.key) is not None:
            return None
        now = self.clock()
        found = look_up(connection, self.key(), attempt.code, now)
        record = self._redeemable(found, attempt)
        if not store.take(connection, record.id, now, attempt.redeemer.name):
            raise TakenMeanwhile()  # redeemed, or deleted, since the lookup
        form = replace(attempt.form, quantity=record.batch.quantity, validity=record.batch.validity)
        new = NewApplication(
            form,
            "",
            secrets.token_urlsafe(24),
            attempt.redeemer.client_ip,
            now,
            attempt.key,
            attempt.digest,
        )
        application_id, number = insert_numbered(connection, new)
        # Approved by the code itself: no DingTalk approval (see status.TRANSITIONS).
        transition(
            connection, application_id, ApplicationStatus.SUBMITTED, ApplicationStatus.APPROVED, now
        )
        store.attach_application(connection, record.id, application_id)
        job_id = queue.enqueue(connection, ISSUE_LICENSE, Subject.application(application_id), now)
        if job_id is None:
            raise RuntimeError(f"application {application_id} already had its license job")
        return Stored(application_id, number, new.token, job_id)

    def _redeemable(self, found: Lookup, attempt: Attempt) -> store.CodeRecord:
        """The code's record if it may be redeemed for the form's product, else its refusal.

        A partner's app knows only its own batches: another's code is unknown to it.
        """
        form, app_id, record = attempt.form, attempt.redeemer.app_id, found.record
        if app_id is not None and record is not None and record.batch.app_id != app_id:
            raise CodeUnknown()
        if found.state is not CodeState.UNUSED or record is None:
            raise _refusal(found)
        if record.batch.product != form.product:
            raise CodeForAnotherProduct(
                self._names(record.batch.product), self._names(form.product)
            )
        return record

    def _refusal_now(self, attempt: Attempt) -> CodeRefused:
        """Why a code another request took or deleted meanwhile is refused, read afresh."""
        found = self.database.run(
            lambda connection: look_up(connection, self.key(), attempt.code, self.clock())
        )
        return _refusal(found) if found.state is not CodeState.UNUSED else CodeUsed()

    def _names(self, product: str) -> dict[str, str]:
        known = self.catalogue.get(product)
        return dict(known.names) if known else {"zh": product, "en": product}

    def _issue_now(self, job_id: int) -> None:
        """Sign (and so mail) the license now if we can; the runner does it otherwise."""
        if self.run_now is not None:
            try:
                self.run_now(job_id)
                return
            except Exception:  # the job is on record: the runner signs it later
                log.warning(
                    "job %s could not run at once; the runner will take it", job_id, exc_info=True
                )
        if self.kick is not None:
            self.kick()

    def _fresh_answer(self, stored: Stored) -> Submitted:
        """The answer for a code just redeemed: issued, or delivered, if the job ran at once."""
        try:
            with self.database.transaction() as connection:
                status = status_of(connection, stored.id) or ApplicationStatus.APPROVED
        except DBAPIError:  # gone since the commit: the redemption is stored all the same
            status = ApplicationStatus.APPROVED
        status_url = f"{self.public_base_url}/status/{stored.token}"
        return Submitted(stored.number, stored.token, status, status_url, replayed=False)

    def _answer(self, application_id: int) -> Submitted:
        with self.database.transaction() as connection:
            application = by_id(connection, application_id)
        if application is None:
            raise RuntimeError(f"application {application_id} vanished after it was stored")
        status_url = f"{self.public_base_url}/status/{application.token}"
        return Submitted(
            application.number, application.token, application.status, status_url, replayed=True
        )

    def _replay(self, attempt: Attempt) -> Submitted | None:
        """The first answer under the attempt's key; None if nothing was redeemed under it."""
        with self.database.transaction() as connection:
            first = by_idempotency_key(connection, attempt.key or "")
        if first is None:
            return None
        if first.request_hash != attempt.digest:
            if attempt.redeemer.app_id is not None:  # a partner's request_id
                raise Conflict(
                    "该 request_id 已用于另一次兑换；新的兑换请用新的 request_id。",
                    "This request_id was used for a different redemption; send a new request_id "
                    "for a new one, or the same body to read the first answer back.",
                )
            raise Conflict(
                "该请求标识已用于另一次提交，请刷新页面后重新提交。",
                "This Idempotency-Key was used for a different request; reload the page and "
                "submit again.",
            )
        return self._answer(first.id)

    def _replay_found(self, attempt: Attempt) -> Submitted:
        replay = self._replay(attempt)
        if replay is None:
            raise RuntimeError(f"the application stored under key {attempt.key!r} vanished")
        return replay

    def _counters(self, attempt: Attempt) -> list[Counter]:
        feature = f"redeem-feature:{attempt.form.product}:{attempt.form.feature_code}"
        return [  # in this order always: see rate_limits.hit_all
            (attempt.redeemer.counter, attempt.redeemer.limit),
            (feature, self.limits.per_feature_code),
        ]

    def _digest(self, form: ApplicationForm, code: str) -> str:
        """What tells a retry from another request: the form and the code's keyed hash (the
        applications table must not give codes away)."""
        content = {**asdict(form), "code": code_hash(self.key(), code)}
        canonical_json = json.dumps(content, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical_json.encode()).hexdigest()


def customer_form(data: object, catalogue: Catalogue) -> ApplicationForm:
    """The apply form checked as an application's, but for its terms (the batch's, later).

    Quantity and validity are not asked of the customer: a stand-in the product allows is
    checked in their place, and any the form carries are ignored.
    """
    if not isinstance(data, dict):
        raise BadRequest("请求内容应为 JSON 对象。", "The request body must be a JSON object.")
    code = data.get("product")
    product = catalogue.get(code) if isinstance(code, str) else None
    fields = {name: value for name, value in data.items() if name not in TERMS}
    if product is not None:
        fields["quantity"] = product.quantities[0] if product.quantities else 1
        fields["validity"] = product.validities[0]
    return validate(fields, catalogue)


class TakenMeanwhile(CodeUsed):
    """The code was redeemed or deleted between its lookup and its taking (read again)."""


def address_group(client_ip: str) -> str:
    """What one client's failures are counted under: its IPv4 address, or its IPv6 /64
    (a host is given a whole /64, and would otherwise get a fresh count per address)."""
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return client_ip
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _refusal(found: Lookup) -> CodeRefused:
    batch = found.record.batch if found.record else None
    if found.state is CodeState.REDEEMED:
        return CodeUsed()
    if found.state is CodeState.DELETED:
        return CodeDeleted()
    if found.state is CodeState.EXPIRED and batch is not None:
        return CodeExpired(batch.valid_until)
    if found.state is CodeState.NOT_YET_VALID and batch is not None:
        return CodeNotYetValid(batch.valid_from)
    return CodeUnknown()
