"""The QR page's redemption route (behind the frontend's signed proxy, as /applications is)."""

from flask import Blueprint, current_app, g, request

from backend.codes.redeem import Redemptions
from backend.exceptions import BadRequest

bp = Blueprint("redemptions", __name__)


def _service() -> Redemptions:
    service: Redemptions = current_app.extensions["redemptions"]
    return service


@bp.post("/redemptions")
def redeem() -> tuple[dict[str, str], int, dict[str, str]]:
    """Redeem a code with the apply form: 201 as /applications answers (the first one's, on a
    retry under the same Idempotency-Key); the license is issued without an approval."""
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # nested deeper than the parser goes; nothing a form needs
        data = None
    if not isinstance(data, dict):
        raise BadRequest("请求内容应为 JSON 对象。", "The request body must be a JSON object.")
    form = {name: value for name, value in data.items() if name != "code"}
    client_ip = g.client_ip
    submitted = _service().redeem(
        form, data.get("code"), client_ip, client_ip, g.get("idempotency_key")
    )
    return submitted.body(), 201, {"Idempotent-Replayed": str(submitted.replayed).lower()}
