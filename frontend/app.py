"""The frontend function's Flask app: the page, QR codes, and the signed proxy."""

import json
import logging
import re
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, redirect, request, send_file, send_from_directory
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from frontend import checks, qr
from frontend.backend_client import BackendClient, BackendResponse, Relayed
from frontend.catalogue import checked_link_terms, public_catalogue
from frontend.config import FrontendConfig
from frontend.exceptions import BackendTimeout, BackendUnavailable, BadRequest, RequestRefused
from frontend.fc_signature import FcCredentials

log = logging.getLogger(__name__)
TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
CHANGE_ID = re.compile(r"[A-Za-z0-9._~-]{1,64}")
"""A change id the relay passes on: characters a path carries as they are (chg-3f9a1c2b7d4e5f60)."""
CHANGES = "/api/v1/changes"
CODES = "/api/v1/codes"
CODE_ACTIONS = frozenset({"query", "redeem", "delete"})
"""POST /api/v1/codes/<action>: the code goes in the body, never in a URL (URLs are logged)."""
IMMUTABLE = "public, max-age=31536000, immutable"
OPENAPI = Path(__file__).parent / "openapi.json"
FAVICON = Path(__file__).parent / "favicon.ico"
RETRY_AFTER = "5"
"""Seconds a caller is asked to wait after the frontend's own 503."""
QR_LIMITS = (("product", 64), ("feature", 128), ("version", 64))
"""Characters each /qr parameter may have: the widths the application form allows."""
Messages = tuple[str, str]
ERRORS: dict[int, Messages] = {
    404: ("找不到该地址。", "Nothing is at this address."),
    405: ("不支持该请求方法。", "This method is not allowed here."),
    413: ("请求内容过大（最多 16 KB）。", "The request is too large (16 KB at most)."),
    503: (
        "服务暂时不可用，请稍后再试。",
        "The service is unavailable; try again in a minute.",
    ),
    504: (
        "服务响应超时，请稍后再试。",
        "The service took too long to answer; try again in a minute.",
    ),
}
SERVER_ERROR: Messages = (
    "服务器出错，请稍后再试。",
    "Something went wrong on our side; try again later.",
)
UNKNOWN_OUTCOME: Messages = (
    "我们无法确认您的申请是否已收到；可以放心重试。",
    "We could not confirm your application was received; it is safe to try again.",
)
"""A submission that failed in transit may have been stored: the same key makes a retry safe."""
BATCH_IN_DOUBT: Messages = (
    "无法确认批次是否已生成：请用 GET /api/v1/codes/batches 查看；"
    "未拿到激活码的批次请删除后重新生成。",
    "We could not confirm the batch was made: GET /api/v1/codes/batches lists yours; delete one "
    "whose codes you did not get, and make another.",
)
REDEMPTION_IN_DOUBT: Messages = (
    "无法确认兑换是否已完成：请以相同的 request_id 和内容重新发送，只会兑换一次。",
    "We could not confirm the redemption: send it again with the same request_id and body; "
    "it is redeemed once.",
)
CHANGE_IN_DOUBT: Messages = (
    "无法确认变更是否已收到；请以相同的 request_id 和内容重新签名后再发：同一变更不会重复创建。",
    "We could not confirm the change was received; sign and send the same body with the same "
    "request_id again: it never makes a second change.",
)
CALLER_REFUSALS = frozenset(
    {
        "unsigned",
        "unknown_app",
        "timestamp_expired",
        "signature_mismatch",
        "nonce_replayed",
        "app_disabled",
        "not_allowed",
    }
)
"""The ``error`` of the backend's 401 and 403 answers to a caller's app signature
(backend/apps/errors.py): the caller's to fix, relayed as they are. Any other 401 or 403 is
the deployment's: FC's gateway refusing the proxy's call answers with its own JSON (``Code``
or ``ErrorCode``, never ``error``), and the backend refusing the proxy's HMAC says
``unauthorized``."""
PASSED_HEADERS = frozenset({"accept", "content-type", "content-md5", "date"})
"""Headers with a line of their own in an app signature's string to sign."""
NEVER_PASSED = frozenset(
    {"host", "content-length", "connection", "keep-alive", "transfer-encoding", "te", "trailer"}
    | {"upgrade", "proxy-authorization", "proxy-connection", "authorization", "cookie"}
)
"""Headers of this hop or of this site, kept back even when a caller names them as signed."""
NEVER_PASSED_PREFIXES = ("x-fc-", "x-acs-", "x-dingpass-", "x-forwarded-")
"""FC's (the frontend's own credentials among them), the proxy's, and what proxies append."""


def create_app(config: FrontendConfig, backend: BackendClient | None = None) -> Flask:
    """Build the frontend app; ``backend`` defaults to a pooled client of BACKEND_URL."""
    app = Flask("frontend", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = checks.MAX_BODY
    if config.trusted_proxy_hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=config.trusted_proxy_hops)  # type: ignore[method-assign]
    client = backend or BackendClient(
        config.backend_url, config.proxy_secret, config.backend_timeout, scheme=config.fc_scheme
    )
    app.extensions["backend"] = client
    _page_routes(app, config)
    _api_routes(app, client)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(RequestRefused, _refused)
    return app


def _page_routes(app: Flask, config: FrontendConfig) -> None:
    static = config.static_dir

    @app.get("/")
    def home() -> Response:
        return redirect("/apply")  # type: ignore[return-value]

    @app.get("/apply")
    @app.get("/status/<token>")
    def page(token: str | None = None) -> Response:
        response = send_from_directory(static, "index.html", max_age=0)
        response.headers["Cache-Control"] = "no-cache"
        return response

    @app.get("/assets/<path:name>")
    def asset(name: str) -> Response:
        response = send_from_directory(static / "assets", name)
        response.headers["Cache-Control"] = IMMUTABLE  # file names carry a content hash
        return response

    @app.get("/catalogue.json")
    def catalogue() -> Response:
        response = jsonify(public_catalogue(config.catalogue_file))
        response.headers["Cache-Control"] = "public, max-age=60"
        return response

    @app.get("/qr")
    def qr_code() -> Response:
        return _qr(config)

    @app.get("/favicon.ico")
    def favicon() -> Response:
        # Browsers ask for it on every page, the page's link or not.
        return send_file(FAVICON, mimetype="image/x-icon", max_age=86400)

    @app.get("/healthz")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    # Function Compute's lifecycle hooks: nothing to warm (the backend's connections are made on
    # the first call that needs one), nothing to release but those connections.
    @app.post("/initialize")
    def initialize() -> dict[str, str]:
        return {"status": "initialized"}

    @app.get("/pre-stop")
    def pre_stop() -> dict[str, str]:
        app.extensions["backend"].close()
        return {"status": "stopped"}


def _qr(config: FrontendConfig) -> Response:
    product, feature = request.args.get("product", ""), request.args.get("feature", "")
    kind = request.args.get("format", "svg")
    if not product or not feature or kind not in ("svg", "png"):
        raise BadRequest(
            "参数有误：需要 product 和 feature，format 为 svg 或 png。",
            "Give product and feature; format is svg or png.",
        )
    _check_qr_lengths()
    feature = checked_link_terms(config.catalogue_file, product, feature)
    url = qr.apply_url(config.public_base_url, product, feature, request.args.get("version"))
    mimetype = "image/svg+xml" if kind == "svg" else "image/png"
    response = Response(qr.render(url, kind), mimetype=mimetype)
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


def _check_qr_lengths() -> None:
    """Refuse a parameter longer than the form takes, saying which (segno would fail later)."""
    for name, limit in QR_LIMITS:
        length = len(request.args.get(name, ""))
        if length > limit:
            raise BadRequest(
                f"参数 {name} 过长（{length} 个字符，最多 {limit} 个）。",
                f"{name} is {length} characters; at most {limit} fit in the apply link.",
            )


def _api_routes(app: Flask, client: BackendClient) -> None:
    @app.post("/api/applications")
    def submit() -> Response:
        return _submission(client, "/applications")

    @app.post("/api/redemptions")
    def redeem() -> Response:
        # An activation code with the form: the backend issues the license without approval.
        return _submission(client, "/redemptions")

    @app.get("/api/applications/<token>")
    def status(token: str) -> Response:
        if not TOKEN.fullmatch(token):
            return _error(404, *ERRORS[404])
        return _forward(client, "GET", f"/applications/{token}", b"")

    @app.route(CHANGES, methods=["GET", "POST"])
    def changes() -> Response:
        return _relay(client, CHANGE_IN_DOUBT if request.method == "POST" else None)

    @app.get(f"{CHANGES}/<change_id>")
    def change(change_id: str) -> Response:
        if not CHANGE_ID.fullmatch(change_id):
            return _error(404, *ERRORS[404])
        return _relay(client)

    @app.route(f"{CODES}/batches", methods=["GET", "POST"])
    def code_batches() -> Response:
        return _relay(client, BATCH_IN_DOUBT if request.method == "POST" else None)

    @app.route(f"{CODES}/batches/<batch_id>", methods=["GET", "DELETE"])
    def code_batch(batch_id: str) -> Response:
        if not CHANGE_ID.fullmatch(batch_id):
            return _error(404, *ERRORS[404])
        return _relay(client)

    @app.post(f"{CODES}/<action>")
    def code_action(action: str) -> Response:
        if action not in CODE_ACTIONS:
            return _error(404, *ERRORS[404])
        return _relay(client, REDEMPTION_IN_DOUBT if action == "redeem" else None)

    @app.get("/api/openapi.json")
    def openapi() -> Response:
        return Response(OPENAPI.read_bytes(), mimetype="application/json")


def _submission(client: BackendClient, path: str) -> Response:
    """Forward the page's JSON form to ``path`` with its idempotency key (a retry is safe)."""
    checks.json_content(request)
    key = checks.idempotency_key(request.headers.get(checks.IDEMPOTENCY_KEY))
    body = checks.body(request)
    return _forward(client, "POST", path, body, key, UNKNOWN_OUTCOME)


def _forward(
    client: BackendClient,
    method: str,
    path: str,
    body: bytes,
    key: str | None = None,
    in_doubt: Messages | None = None,
) -> Response:
    """Relay a request; ``in_doubt`` is what to say when its outcome cannot be known."""
    ip = checks.client_ip(request.remote_addr)
    try:
        answer = client.send(method, path, body, ip, key, _credentials())
    except BackendUnavailable:
        return _error(503, *(in_doubt or ERRORS[503]), headers={"Retry-After": RETRY_AFTER})
    except BackendTimeout:
        return _error(504, *(in_doubt or ERRORS[504]))
    if answer.status in (401, 403):
        # The applications API takes no caller's signature: a refusal is of the proxy's own.
        return _refused_proxy(answer)
    response = Response(answer.body, status=answer.status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    if answer.retry_after:
        response.headers["Retry-After"] = answer.retry_after
    return response


def _relay(client: BackendClient, in_doubt: Messages | None = None) -> Response:
    """Pass a signed API call (changes, codes) on as its caller signed it, and the answer back.

    ``in_doubt``: what to say when a failure in transit may have left something behind.
    """
    call = Relayed(
        request.method,
        request.path,
        request.query_string.decode("latin-1"),
        _whole_body(),
        _signable_headers(),
    )
    ip = checks.client_ip(request.remote_addr)
    try:
        answer = client.relay(call, ip, _credentials())
    except BackendUnavailable:
        return _error(503, *(in_doubt or ERRORS[503]), headers={"Retry-After": RETRY_AFTER})
    except BackendTimeout:
        return _error(504, *(in_doubt or ERRORS[504]))
    if answer.status in (401, 403) and not _callers_refusal(answer):
        return _refused_proxy(answer)
    # The backend's own Content-Type when it sent one (its answers are JSON).
    mimetype = None if "Content-Type" in answer.headers else "application/json"
    response = Response(answer.body, answer.status, answer.headers, mimetype)
    response.headers["Cache-Control"] = "no-store"
    return response


def _credentials() -> FcCredentials | None:
    # On Function Compute each request brings the frontend's temporary credentials; locally
    # there are none, and the HMAC signature alone goes.
    return FcCredentials.from_headers({k.lower(): v for k, v in request.headers.items()})


def _whole_body() -> bytes:
    """The body as it came, to the byte: 413 past the backend's limit, also when chunked."""
    request.max_content_length = checks.MAX_BODY + 1  # one more shows a chunked body's excess
    data = request.get_data()
    if len(data) > checks.MAX_BODY:
        raise RequestEntityTooLarge()
    return data


def _signable_headers() -> dict[str, str]:
    """The caller's headers its app signature may cover: every X-Ca-*, the four with lines of
    their own, and any it names in X-Ca-Signature-Headers, save those of this hop."""
    named = request.headers.get("X-Ca-Signature-Headers", "").lower().split(",")
    wanted = PASSED_HEADERS | {name.strip() for name in named}
    passed = {}
    for name, value in request.headers.items():
        lowered = name.lower()
        if lowered in NEVER_PASSED or lowered.startswith(NEVER_PASSED_PREFIXES):
            continue
        if lowered.startswith("x-ca-") or lowered in wanted:
            passed[name] = value
    return passed


def _callers_refusal(answer: BackendResponse) -> bool:
    """Whether a 401 or 403 is the backend's to the caller's app signature (CALLER_REFUSALS)."""
    try:
        body = json.loads(answer.body)
    except ValueError:  # not JSON, or not UTF-8: not our backend's answer
        return False
    return isinstance(body, dict) and body.get("error") in CALLER_REFUSALS


def _refused_proxy(answer: BackendResponse) -> Response:
    # FC's gateway or the backend refused the proxy's own signatures: a deployment fault,
    # never the caller's, and nothing was stored.
    log.error(
        "the backend refused the frontend's signed request (%s): check that both functions "
        "have the same PROXY_SECRET and that the frontend's role may fc:InvokeFunction it",
        answer.status,
    )
    return _error(503, *ERRORS[503], headers={"Retry-After": RETRY_AFTER})


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    fallback = (
        SERVER_ERROR if status >= 500 else ("请求有误。", error.description or "Bad request.")
    )
    zh, en = ERRORS.get(status, fallback)
    # Werkzeug's own headers, such as a 405's Allow, without its HTML Content-Type.
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    return _error(status, zh, en, headers=headers)


def _refused(error: RequestRefused) -> Response:
    zh, en = error.message["zh"], error.message["en"]
    return _error(error.status, zh, en, code=error.code, fields=error.fields)


def _error(
    status: int,
    zh: str,
    en: str,
    *,
    code: str | None = None,
    fields: dict[str, dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "error": code or _ERROR_CODES.get(status, "error"),
        "message": {"zh": zh, "en": en},
    }
    if fields:
        body["fields"] = fields
    return Response(
        json.dumps(body, ensure_ascii=False),
        status=status,
        mimetype="application/json",
        headers=headers,
    )


_ERROR_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    500: "internal_error",
    503: "backend_unavailable",
    504: "backend_timeout",
}
