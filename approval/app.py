"""The approval function's Flask app: DingTalk's HTTP callback in."""

import logging
from collections.abc import Callable
from datetime import datetime

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from approval.callback import CallbackReceiver
from approval.callback_crypto import CallbackCrypto
from approval.exceptions import CallbackError
from backend import defaults, lifecycle
from backend.approvals.dispatcher import dispatcher_for
from backend.clock import utc_now
from backend.config import Config
from backend.error_handlers import OUTAGE_RETRY_AFTER, is_outage
from backend.exceptions import ConfigError
from backend.jobs.kick import configured_kick
from backend.request_body import whole_body
from backend.storage.database import Database

log = logging.getLogger(__name__)


def create_app(
    config: Config,
    *,
    clock: Callable[[], datetime] | None = None,
    kick: Callable[[], None] | None = None,
) -> Flask:
    """Build the approval app for ``config``; it needs the callback token, aes_key and owner key."""
    token, aes_key, owner = (
        config.dingtalk_callback_token,
        config.dingtalk_callback_aes_key,
        config.callback_owner_key,
    )
    if not (token and aes_key and owner):
        raise ConfigError(
            "HTTP callback mode needs DINGTALK_CALLBACK_TOKEN, DINGTALK_CALLBACK_AES_KEY and "
            "DINGTALK_APP_KEY (or DINGTALK_CALLBACK_OWNER_KEY): "
            "copy them from the app's event subscription"
        )
    clock = clock or utc_now
    kick = kick or configured_kick(config.fc_runner_function, config.fc_endpoint)
    database = Database(config.database)
    receiver = CallbackReceiver(
        CallbackCrypto(token, aes_key, owner),
        database,
        dispatcher_for(config, database, clock, kick),
        config.callback_tolerance,
        clock,
    )
    app = Flask("approval")
    app.config["MAX_CONTENT_LENGTH"] = defaults.MAX_BODY
    app.extensions["database"] = database

    @app.post(defaults.CALLBACK_PATH)
    def callback() -> Response | tuple[Response, int, dict[str, str]]:
        try:
            return jsonify(receiver.receive(request.args, whole_body(defaults.MAX_BODY)))
        except CallbackError as err:
            log.warning("callback refused (%s): %s", type(err).__name__, err)
            return _error(type(err).__name__, str(err), err.status)

    lifecycle.register(app, database)
    app.add_url_rule("/healthz", "health", lambda: {"status": "ok"})
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    return app


def _error(
    error: str, message: str, status: int, headers: dict[str, str] | None = None
) -> tuple[Response, int, dict[str, str]]:
    return jsonify({"error": error, "message": message}), status, headers or {}


def _http_error(error: HTTPException) -> tuple[Response, int, dict[str, str]]:
    """Werkzeug's errors as JSON, never its HTML pages; a 405 keeps its Allow header."""
    status = error.code or 500
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    name = error.name.lower().replace(" ", "_")
    return _error(name, error.description or error.name, status, headers)


def _unexpected(error: Exception) -> tuple[Response, int, dict[str, str]]:
    """503 while the database is out, so that DingTalk sends the event again; else 500."""
    if is_outage(error):
        log.warning("callback not taken, the database is unavailable: %s", type(error).__name__)
        retry = {"Retry-After": str(OUTAGE_RETRY_AFTER)}
        return _error("database_unavailable", "the database is unavailable", 503, retry)
    log.exception("callback failed: %s", error)
    return _error("internal_error", "the callback could not be handled", 500)
