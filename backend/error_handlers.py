"""Every error leaves the backend as JSON: {"error", "message": {"zh", "en"}, "fields"?}."""

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from backend.exceptions import ApiError, RateLimited

log = logging.getLogger(__name__)

HTTP_MESSAGES = {
    404: ("找不到该地址。", "Nothing is at this address."),
    405: ("不支持该请求方法。", "This method is not allowed here."),
    413: ("请求内容过大。", "The request is too large."),
}


def register(app: Flask) -> None:
    """Install the JSON error handlers on ``app``."""
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)


def _api_error(error: ApiError) -> tuple[Response, int, dict[str, str]]:
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, RateLimited) else {}
    return jsonify(error.body()), error.status, headers


def _http_error(error: HTTPException) -> tuple[Response, int]:
    status = error.code or 500
    zh, en = HTTP_MESSAGES.get(status, ("请求有误。", error.description or "Bad request."))
    return jsonify(
        {"error": error.name.lower().replace(" ", "_"), "message": {"zh": zh, "en": en}}
    ), status


def _unexpected(error: Exception) -> tuple[Response, int]:
    log.exception("unexpected error: %s", error)
    message = {
        "zh": "服务器出错，请稍后再试。",
        "en": "Something went wrong on our side; try again later.",
    }
    return jsonify({"error": "internal_error", "message": message}), 500
