"""The approval function's Flask app: DingTalk's HTTP callback in."""

import logging
from collections.abc import Callable
from datetime import datetime

from flask import Flask, Response, jsonify, request

from approval.callback import CallbackReceiver
from approval.callback_crypto import CallbackCrypto
from approval.exceptions import CallbackError
from backend import defaults, lifecycle
from backend.approvals.dispatcher import Dispatcher
from backend.clock import utc_now
from backend.config import Config
from backend.exceptions import ConfigError
from backend.jobs.kick import configured_kick
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
        Dispatcher(database, clock, kick),
        config.callback_tolerance,
        clock,
    )
    app = Flask("approval")
    app.config["MAX_CONTENT_LENGTH"] = defaults.MAX_BODY
    app.extensions["database"] = database

    @app.post(defaults.CALLBACK_PATH)
    def callback() -> Response | tuple[Response, int]:
        try:
            return jsonify(receiver.receive(request.args, request.get_data()))
        except CallbackError as err:
            log.warning("callback refused (%s): %s", type(err).__name__, err)
            return jsonify({"error": type(err).__name__, "message": str(err)}), err.status

    lifecycle.register(app, database)
    app.add_url_rule("/healthz", "health", lambda: {"status": "ok"})
    return app
