"""HTTP routes of the applications API (behind the frontend's signed proxy)."""

from flask import Blueprint, current_app, g, request

from backend.applications.service import Applications
from backend.exceptions import BadRequest

bp = Blueprint("applications", __name__)


def _service() -> Applications:
    service: Applications = current_app.extensions["applications"]
    return service


@bp.post("/applications")
def submit() -> tuple[dict[str, str], int]:
    """Take in an application: 201 with its number and status URL."""
    data = request.get_json(silent=True)
    if data is None:
        raise BadRequest("请求内容应为 JSON。", "The request body must be JSON.")
    return _service().submit(data, g.client_ip), 201


@bp.get("/applications/<token>")
def status(token: str) -> dict[str, object]:
    """Where an application stands."""
    return _service().status(token)
