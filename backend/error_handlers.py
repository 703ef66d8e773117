"""Every error leaves the backend as JSON: {"error", "message": {"zh", "en"}, "fields"?}."""

import logging

from flask import Flask, Response, jsonify
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from backend.exceptions import ApiError, RateLimited

log = logging.getLogger(__name__)

HTTP_MESSAGES = {
    404: ("找不到该地址。", "Nothing is at this address."),
    405: ("不支持该请求方法。", "This method is not allowed here."),
    413: ("请求内容过大。", "The request is too large."),
}
SERVER_ERROR = {
    "zh": "服务器出错，请稍后再试。",
    "en": "Something went wrong on our side; try again later.",
}
OUTAGE = {
    "zh": "数据库暂时不可用，请稍后再试。",
    "en": "The database is unavailable for a moment; try again shortly.",
}
OUTAGE_RETRY_AFTER = 5
"""Seconds a caller is asked to wait after a database outage."""


def register(app: Flask) -> None:
    """Install the JSON error handlers on ``app``."""
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(DBAPIError, _database_error)
    app.register_error_handler(PoolTimeout, _database_error)
    app.register_error_handler(Exception, _unexpected)


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` says the database could not be reached or did not answer in time."""
    if isinstance(error, (OperationalError, PoolTimeout)):
        return True  # refused or lost connections, timeouts, lock waits and deadlocks
    return isinstance(error, DBAPIError) and error.connection_invalidated


def _api_error(error: ApiError) -> tuple[Response, int, dict[str, str]]:
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, RateLimited) else {}
    headers |= getattr(error, "headers", None) or {}  # an app signature's X-Ca-Error-Message
    return jsonify(error.body()), error.status, headers


def _http_error(error: HTTPException) -> tuple[Response, int, dict[str, str]]:
    status = error.code or 500
    fallback = (
        (SERVER_ERROR["zh"], SERVER_ERROR["en"])
        if status >= 500
        else ("请求有误。", error.description or "Bad request.")
    )
    zh, en = HTTP_MESSAGES.get(status, fallback)
    # Werkzeug's own headers, such as a 405's Allow, without its HTML Content-Type.
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    body = {"error": error.name.lower().replace(" ", "_"), "message": {"zh": zh, "en": en}}
    return jsonify(body), status, headers


def _database_error(error: Exception) -> tuple[Response, int, dict[str, str]]:
    if not is_outage(error):
        response, status = _unexpected(error)
        return response, status, {}
    # The driver's message only: SQLAlchemy's text of the error carries the statement's values.
    log.warning("database unavailable: %s", getattr(error, "orig", None) or type(error).__name__)
    headers = {"Retry-After": str(OUTAGE_RETRY_AFTER)}
    return jsonify({"error": "database_unavailable", "message": OUTAGE}), 503, headers


def _unexpected(error: Exception) -> tuple[Response, int]:
    log.exception("unexpected error: %s", error)
    return jsonify({"error": "internal_error", "message": SERVER_ERROR}), 500
