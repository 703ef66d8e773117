"""The frontend function's Flask app: the page, QR codes, and the signed proxy."""

import json
import re
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, redirect, request, send_from_directory
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from frontend import qr
from frontend.backend_client import BackendClient
from frontend.catalogue import public_catalogue
from frontend.config import FrontendConfig
from frontend.exceptions import BackendTimeout, BackendUnavailable

MAX_BODY = 16 * 1024
TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
IMMUTABLE = "public, max-age=31536000, immutable"
OPENAPI = Path(__file__).parent / "openapi.json"
ERRORS = {
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


def create_app(config: FrontendConfig, backend: BackendClient | None = None) -> Flask:
    """Build the frontend app; ``backend`` defaults to a pooled client of BACKEND_URL."""
    app = Flask("frontend", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    if config.trusted_proxy_hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=config.trusted_proxy_hops)  # type: ignore[method-assign]
    client = backend or BackendClient(
        config.backend_url, config.proxy_secret, config.backend_timeout
    )
    app.extensions["backend"] = client
    _page_routes(app, config)
    _api_routes(app, client)
    app.register_error_handler(HTTPException, _http_error)
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
        return _qr(config.public_base_url)

    @app.get("/healthz")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    # Function Compute's lifecycle hooks: nothing to warm but the backend session, nothing to
    # release but its pooled connections.
    @app.post("/initialize")
    def initialize() -> dict[str, str]:
        return {"status": "initialized"}

    @app.get("/pre-stop")
    def pre_stop() -> dict[str, str]:
        app.extensions["backend"].close()
        return {"status": "stopped"}


def _qr(base_url: str) -> Response:
    product, feature = request.args.get("product", ""), request.args.get("feature", "")
    kind = request.args.get("format", "svg")
    if not product or not feature or kind not in ("svg", "png") or len(product + feature) > 300:
        return _error(
            400,
            "参数有误：需要 product 和 feature，format 为 svg 或 png。",
            "Give product and feature; format is svg or png.",
        )
    url = qr.apply_url(base_url, product, feature, request.args.get("version"))
    mimetype = "image/svg+xml" if kind == "svg" else "image/png"
    response = Response(qr.render(url, kind), mimetype=mimetype)
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


def _api_routes(app: Flask, client: BackendClient) -> None:
    @app.post("/api/applications")
    def submit() -> Response:
        return _forward(client, "POST", "/applications", request.get_data())

    @app.get("/api/applications/<token>")
    def status(token: str) -> Response:
        if not TOKEN.fullmatch(token):
            return _error(404, *ERRORS[404])
        return _forward(client, "GET", f"/applications/{token}", b"")

    @app.get("/api/openapi.json")
    def openapi() -> Response:
        return Response(OPENAPI.read_bytes(), mimetype="application/json")


def _forward(client: BackendClient, method: str, path: str, body: bytes) -> Response:
    try:
        answer = client.send(method, path, body, request.remote_addr or "")
    except BackendUnavailable:
        return _error(503, *ERRORS[503])
    except BackendTimeout:
        return _error(504, *ERRORS[504])
    response = Response(answer.body, status=answer.status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    if answer.retry_after:
        response.headers["Retry-After"] = answer.retry_after
    return response


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    zh, en = ERRORS.get(status, ("请求有误。", error.description or "Bad request."))
    return _error(status, zh, en)


def _error(status: int, zh: str, en: str) -> Response:
    body: dict[str, Any] = {
        "error": _ERROR_CODES.get(status, "error"),
        "message": {"zh": zh, "en": en},
    }
    return Response(
        json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json"
    )


_ERROR_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    503: "backend_unavailable",
    504: "backend_timeout",
}
