"""HTTP routes of the changes API, for ITSM and OA systems signing as API Gateway apps."""

from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy import Connection

from backend.apps.flask_auth import require_app
from backend.changes.model import ChangeStatus
from backend.changes.service import Changes
from backend.changes.validation import message
from backend.exceptions import BadRequest, Message, ValidationError
from backend.storage import changes as store
from backend.storage.database import Database

PREFIX = "/api/v1"
bp = Blueprint("changes", __name__, url_prefix=PREFIX)
require_app(bp, "changes")
MAX_PAGE = 100
FIRST_YEAR, LAST_YEAR = 1970, 9998


def _service() -> Changes:
    service: Changes = current_app.extensions["changes"]
    return service


@bp.post("/changes")
def submit() -> tuple[Response, int, dict[str, str]]:
    """Take in a change: 202 with its id and planned steps (the first one's, when repeated)."""
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        body = None
    if body is None:
        raise BadRequest("请求内容应为 JSON。", "The request body must be JSON.")
    submitted = _service().submit(g.api_app.id, body)
    headers = {
        "Location": f"{PREFIX}/changes/{submitted.change.public_id}",
        "Idempotent-Replayed": str(submitted.replayed).lower(),
    }
    return jsonify(submitted.change.view()), 202, headers


@bp.get("/changes/<public_id>")
def progress(public_id: str) -> Response:
    """Where a change stands: its status, each step's, and the results so far."""
    return jsonify(_service().get(g.api_app.id, public_id).view())


@bp.get("/changes")
def listing() -> Response:
    """The caller's changes, newest first, filtered by status and time, a page at a time."""
    filters = _filters(request.args)
    cursor, limit = filters.pop("cursor", None), filters.pop("limit")
    database: Database = current_app.extensions["database"]
    with database.transaction() as connection:
        before = _after(connection, g.api_app.id, cursor)
        found = store.listing(
            connection, app_id=g.api_app.id, before_id=before, limit=limit + 1, **filters
        )
    page, more = found[:limit], len(found) > limit
    return jsonify(
        {
            "changes": [change.summary() for change in page],
            "next_cursor": page[-1].public_id if more else None,
        }
    )


def _after(connection: Connection, app_id: int, cursor: str | None) -> int | None:
    """Where the page that ``cursor`` (the last change of the page before) names begins."""
    if cursor is None:
        return None
    change = store.by_public_id(connection, cursor)
    if change is None or change.app_id != app_id:
        raise ValidationError(
            {
                "cursor": message(
                    "应为上一页给出的 next_cursor。",
                    "Must be the next_cursor of the page before, as it was given.",
                )
            }
        )
    return change.id


def _filters(args: Any) -> dict[str, Any]:
    errors: dict[str, Message] = {}
    filters: dict[str, Any] = {"limit": 20}
    status = args.get("status")
    if status is not None:
        if status not in set(ChangeStatus):
            known = ", ".join(ChangeStatus)
            errors["status"] = message(f"可选值：{known}。", f"Must be one of: {known}.")
        filters["status"] = status
    for name in ("since", "until"):
        if args.get(name) is not None:
            filters[name] = _moment(args[name], name, errors)
    filters["limit"] = _number(args.get("limit", "20"), "limit", 1, MAX_PAGE, errors)
    if args.get("cursor") is not None:
        filters["cursor"] = args["cursor"]
    if errors:
        raise ValidationError(errors)
    return filters


def _moment(text: str, name: str, errors: dict[str, Message]) -> datetime | None:
    """An ISO 8601 time in UTC (no zone: UTC), within the years a database column holds."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        moment = moment.replace(tzinfo=moment.tzinfo or timezone.utc).astimezone(timezone.utc)
        if not FIRST_YEAR <= moment.year <= LAST_YEAR:
            raise ValueError(f"year {moment.year}")
    except (ValueError, OverflowError):
        errors[name] = message(
            f"应为 {FIRST_YEAR}–{LAST_YEAR} 年间的 ISO 8601 时间，如 2026-11-30T08:00:00Z。",
            f"Must be an ISO 8601 time between {FIRST_YEAR} and {LAST_YEAR}, such as "
            "2026-11-30T08:00:00Z.",
        )
        return None
    return moment


def _number(text: str, name: str, low: int, high: int, errors: dict[str, Message]) -> int:
    if text.isascii() and text.isdecimal() and low <= int(text) <= high:
        return int(text)
    errors[name] = message(f"应为 {low}–{high} 的整数。", f"Must be a whole number, {low}–{high}.")
    return low
