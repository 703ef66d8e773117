"""HTTP routes of the applications API (behind the frontend's signed proxy)."""

from flask import Blueprint, current_app, g, request

from backend.applications.service import Applications
from backend.exceptions import BadRequest

bp = Blueprint("applications", __name__)


def _service() -> Applications:
    service: Applications = current_app.extensions["applications"]
    return service


@bp.post("/applications")
def submit() -> tuple[dict[str, str], int, dict[str, str]]:
    """Take in an application: 201 with its number and status URL (the first one's, on a retry)."""
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # nested deeper than the parser goes; nothing a form needs
        data = None
    if data is None:
        raise BadRequest("请求内容应为 JSON。", "The request body must be JSON.")
    submitted = _service().submit(data, g.client_ip, g.get("idempotency_key"))
    return submitted.body(), 201, {"Idempotent-Replayed": str(submitted.replayed).lower()}


@bp.get("/applications/<token>")
def status(token: str) -> dict[str, object]:
    """Where an application stands."""
    return _service().status(token)
