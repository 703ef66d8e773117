"""HTTP routes of the codes API, for resellers and partners signing as API Gateway apps.

Each route needs its scope (SCOPES). Codes travel in bodies, never in URLs, which are logged.
An app sees only its own batches, and the codes of its own batches: another's is unknown.
"""

import csv
import io
import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request

from backend.apps.flask_auth import CLOCK, require_app
from backend.catalogue import Catalogue
from backend.codes import batches
from backend.codes.batches import DEFAULT_VALIDITY, BatchTerms
from backend.codes.errors import BadTerms, CodeError, CodeRedeemed, UnknownBatch, UnknownCode
from backend.codes.lookup import CodeState, Lookup, canonical, look_up
from backend.codes.redeem import Redemptions
from backend.codes.refusals import CodeMalformed
from backend.exceptions import ApiError, BadRequest, Conflict, Message, NotFound, ValidationError
from backend.storage.database import Database
from license.exceptions import ActivationCodeError

PREFIX = "/api/v1/codes"
bp = Blueprint("codes_api", __name__, url_prefix=PREFIX)
SCOPES = {
    "generate": "codes.generate",
    "list_batches": "codes.query",
    "show_batch": "codes.query",
    "query": "codes.query",
    "redeem": "codes.redeem",
    "delete_code": "codes.delete",
    "delete_batch": "codes.delete",
}
"""The scope each route needs, by its view's name."""
require_app(bp, SCOPES)
KEY = "code_hash_key"
"""app.extensions: a function giving the key codes are hashed with."""
MAX_API_COUNT = 10_000
"""Codes in one batch made through the API (in one answer); the command line makes more."""
TERMS = frozenset(
    {"product", "count", "valid_from", "valid_until", "quantity", "validity", "days", "note"}
)
FIRST_YEAR, LAST_YEAR = 1970, 9998
CSV = "text/csv"
REQUEST_ID = re.compile(r"[\x21-\x7e]{1,48}")


class CodeNotFound(NotFound):
    """The code is unknown, or of another application's batch."""

    code = "code_unknown"

    def __init__(self) -> None:
        super().__init__("没有这个激活码。", "There is no such activation code in your batches.")


class BatchNotFound(NotFound):
    """No batch has that id, or it is another application's."""

    code = "batch_unknown"

    def __init__(self, public_id: str) -> None:
        shown = public_id[:40]
        super().__init__(f"没有批次 {shown}。", f"There is no batch {shown} of yours.")


class RedeemedCodeKept(Conflict):
    """A redeemed code cannot be deleted: its license is issued."""

    code = "code_used"

    def __init__(self) -> None:
        super().__init__(
            "该激活码已被使用，无法删除：许可证已签发。",
            "This activation code was redeemed and cannot be deleted: its license is issued.",
        )


@bp.post("/batches")
def generate() -> tuple[Response, int, dict[str, str]]:
    """Make a batch: 201 with the batch and its codes, the only time they are shown (or CSV)."""
    now = _now()
    terms = _terms(_body(), g.api_app.id, now)
    made: list[str] = []
    batch = batches.generate(_database(), _key(), _catalogue(), terms, now, made.extend)
    view = _batch_view(batches.summary(_database(), batch.public_id))
    headers = {"Location": f"{PREFIX}/batches/{batch.public_id}", "Cache-Control": "no-store"}
    if request.accept_mimetypes.best_match(["application/json", CSV]) == CSV:
        return _csv(made, batch.public_id), 201, headers
    return jsonify({"batch": view, "codes": made}), 201, headers


@bp.get("/batches")
def list_batches() -> Response:
    """The caller's batches, newest first, counted by state: a batch whose answer was lost
    shows here (its codes are not shown again: delete it and make another)."""
    own = batches.listing(_database(), g.api_app.id)
    return jsonify({"batches": [_batch_view(batch) for batch in own]})


@bp.get("/batches/<public_id>")
def show_batch(public_id: str) -> Response:
    """A batch of the caller's and its codes counted by state."""
    return jsonify(_batch_view(_own_batch(public_id)))


@bp.post("/query")
def query() -> Response:
    """Where a code of the caller's batches stands: state, product, terms, window (never who
    redeemed it); another's code, or none, is unknown."""
    code = _code(_body())
    found = _database().run(lambda connection: look_up(connection, _key(), code, _now()))
    return jsonify(_code_view(found))


@bp.post("/redeem")
def redeem() -> tuple[dict[str, str], int, dict[str, str]]:
    """Redeem a code for a customer of the caller's shop: 201 with the application's number
    and status URL; the license is issued and mailed to the customer without an approval.

    With a ``request_id`` of the caller's, a redemption sent again (its answer lost) gets the
    first answer instead of "already used".
    """
    body = _body()
    form = {name: value for name, value in body.items() if name not in ("code", "request_id")}
    redemptions: Redemptions = current_app.extensions["redemptions"]
    submitted = redemptions.redeem_for_app(
        form, body.get("code"), g.api_app, request.remote_addr or "", _request_id(body)
    )
    return submitted.body(), 201, {"Idempotent-Replayed": str(submitted.replayed).lower()}


def _request_id(body: dict[str, Any]) -> str | None:
    """The caller's own id for a redemption, if it gave one: 1-48 visible ASCII characters."""
    given = body.get("request_id")
    if given is None:
        return None
    if not isinstance(given, str) or not REQUEST_ID.fullmatch(given):
        raise ValidationError(
            {
                "request_id": {
                    "zh": "应为 1–48 个可见 ASCII 字符：调用方自己的兑换编号。",
                    "en": "Must be 1-48 visible ASCII characters: your own id for this "
                    "redemption; sending it again gives back the first answer.",
                }
            }
        )
    return given


@bp.post("/delete")
def delete_code() -> Response:
    """Delete a code of the caller's batches (idempotent); a redeemed one cannot be."""
    code = _code(_body())
    found = _database().run(lambda connection: look_up(connection, _key(), code, _now()))
    if not _own(found):
        raise CodeNotFound()
    deleted = batches.delete_code(_database(), _key(), code, _now())
    return jsonify({"code": code, "state": CodeState.DELETED.value, "deleted_now": deleted})


@bp.delete("/batches/<public_id>")
def delete_batch(public_id: str) -> Response:
    """Delete a batch of the caller's (idempotent): its unredeemed codes cannot be redeemed."""
    _own_batch(public_id)
    deleted = batches.delete_batch(_database(), public_id, _now())
    return jsonify({**_batch_view(batches.summary(_database(), public_id)), "deleted_now": deleted})


@bp.errorhandler(CodeError)
def _code_error(error: CodeError) -> tuple[Response, int]:
    """A batch or code error answered as the API's own (422, 404 or 409)."""
    answer = _as_api_error(error)
    return jsonify(answer.body()), answer.status


def _as_api_error(error: CodeError) -> ApiError:
    if isinstance(error, BadTerms):
        return ValidationError(error.fields)
    if isinstance(error, UnknownBatch):
        return BatchNotFound(str(error))
    if isinstance(error, UnknownCode):
        return CodeNotFound()
    if isinstance(error, CodeRedeemed):
        return RedeemedCodeKept()
    raise error


def _terms(body: dict[str, Any], app_id: int, now: datetime) -> BatchTerms:
    """The batch terms in ``body``, checked: ValidationError with a message per field."""
    errors: dict[str, Message] = {name: _unknown_field() for name in body if name not in TERMS}
    count: Any = body.get("count")
    if isinstance(count, int) and count > MAX_API_COUNT:
        errors["count"] = _message(
            f"通过 API 每批最多 {MAX_API_COUNT} 个；更多请分批生成，或使用命令行。",
            f"At most {MAX_API_COUNT} codes a batch through the API; make several batches, or "
            "use `dingpass codes generate`.",
        )
    # Whatever the body holds goes to check_terms, which says what is wrong with each.
    valid_from: Any = _moment(body, "valid_from", errors, default=now)
    valid_until: Any = _moment(body, "valid_until", errors)
    terms = BatchTerms(
        product=body.get("product", ""),
        count=count,
        valid_from=valid_from,
        valid_until=valid_until,
        quantity=body.get("quantity", 1),
        validity=_validity(body, errors),
        note=body.get("note", ""),
        app_id=app_id,
    )
    try:
        batches.check_terms(_catalogue(), terms, now)
    except BadTerms as bad:
        errors = {**bad.fields, **errors}
    if errors:
        raise ValidationError(errors)
    return terms


def _validity(body: dict[str, Any], errors: dict[str, Message]) -> str:
    validity, days = body.get("validity"), body.get("days")
    if validity is not None and days is not None:
        errors["days"] = _message(
            "请只给出 validity 或 days 之一。", "Give validity or days, not both."
        )
    if days is None:
        return validity if validity is not None else DEFAULT_VALIDITY
    if not isinstance(days, int) or isinstance(days, bool):
        errors["days"] = _message("应为整数天数。", "Must be a whole number of days.")
        return DEFAULT_VALIDITY
    return f"{days}d"


def _moment(
    body: dict[str, Any], name: str, errors: dict[str, Message], default: datetime | None = None
) -> datetime | None:
    """An ISO 8601 time (no zone: UTC) within the years a column holds; ``default`` if absent."""
    text = body.get(name)
    if text is None and default is not None:
        return default
    if text is None:
        errors[name] = _message("请填写此项。", "This field is required.")
        return None
    try:
        if not isinstance(text, str):
            raise TypeError(type(text).__name__)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        moment = moment.replace(tzinfo=moment.tzinfo or timezone.utc).astimezone(timezone.utc)
        if not FIRST_YEAR <= moment.year <= LAST_YEAR:
            raise ValueError(f"year {moment.year}")
    except (TypeError, ValueError, OverflowError):
        errors[name] = _message(
            f"应为 ISO 8601 时间，如 2026-12-01T00:00:00Z（{FIRST_YEAR}–{LAST_YEAR} 年）。",
            f"Must be an ISO 8601 time such as 2026-12-01T00:00:00Z (years {FIRST_YEAR} to "
            f"{LAST_YEAR}).",
        )
        return None
    return moment


def _code(body: dict[str, Any]) -> str:
    """The canonical code in ``body``'s ``code``: 422 (field code) if it is none."""
    unknown = {name: _unknown_field() for name in body if name != "code"}
    if unknown:
        raise ValidationError(unknown)
    text = body.get("code")
    if not isinstance(text, str):
        raise CodeMalformed("")
    try:
        return canonical(text)
    except ActivationCodeError:
        raise CodeMalformed(text) from None


def _own(found: Lookup) -> bool:
    return found.record is not None and found.record.batch.app_id == g.api_app.id


def _own_batch(public_id: str) -> dict[str, Any]:
    try:
        view = batches.summary(_database(), public_id)
    except UnknownBatch:
        raise BatchNotFound(public_id) from None
    if view["app_id"] != g.api_app.id:
        raise BatchNotFound(public_id)
    return view


def _batch_view(summary: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in summary.items() if name != "app_id"}


def _code_view(found: Lookup) -> dict[str, Any]:
    """What an app may know of a code: never who redeemed it, nor what it made."""
    if not _own(found) or found.record is None:
        return {"code": found.code, "state": CodeState.UNKNOWN.value}
    record, batch = found.record, found.record.batch
    return {
        "code": found.code,
        "state": found.state.value,
        "batch": batch.public_id,
        "product": batch.product,
        "quantity": batch.quantity,
        "validity": batch.validity,
        "valid_from": _iso(batch.valid_from),
        "valid_until": _iso(batch.valid_until),
        "redeemed_at": _iso(record.redeemed_at),
        "deleted_at": _iso(record.deleted_at or batch.deleted_at),
    }


def _csv(codes: list[str], public_id: str) -> Response:
    """The codes as `dingpass codes generate` writes them: code,batch."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["code", "batch"])
    writer.writerows([code, public_id] for code in codes)
    disposition = {"Content-Disposition": f'attachment; filename="{public_id}.csv"'}
    return Response(text.getvalue(), headers=disposition, content_type=f"{CSV}; charset=utf-8")


def _body() -> dict[str, Any]:
    try:
        data = request.get_json(silent=True)
    except RecursionError:
        data = None
    if not isinstance(data, dict):
        raise BadRequest("请求内容应为 JSON 对象。", "The request body must be a JSON object.")
    return data


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _message(zh: str, en: str) -> Message:
    return {"zh": zh, "en": en}


def _unknown_field() -> Message:
    return _message("未知字段。", "Unknown field.")


def _now() -> datetime:
    clock: Callable[[], datetime] = current_app.extensions[CLOCK]
    return clock()


def _key() -> bytes:
    key: Callable[[], bytes] = current_app.extensions[KEY]
    return key()


def _database() -> Database:
    database: Database = current_app.extensions["database"]
    return database


def _catalogue() -> Catalogue:
    catalogue: Catalogue = current_app.extensions["catalogue"]
    return catalogue
