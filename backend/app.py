"""The backend function's Flask app: the core API behind the frontend."""

import functools
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from flask import Flask, g, request

from backend import defaults, error_handlers, lifecycle, signed_requests
from backend.applications import api as applications_api
from backend.applications.service import Applications, Limits
from backend.apps.flask_auth import CLOCK
from backend.catalogue import Catalogue, load_catalogue
from backend.changes import api as changes_api
from backend.changes.service import Changes
from backend.changes.types import change_types
from backend.clock import utc_now
from backend.cloud.plugins import all_plugins
from backend.codes import api as codes_api
from backend.codes import page_api as redemptions_api
from backend.codes.hashing import hash_key
from backend.codes.redeem import Redemptions
from backend.codes.throttle import RedeemLimits
from backend.config import Config
from backend.exceptions import ConfigError
from backend.jobs.kick import configured_kick
from backend.request_body import whole_body
from backend.storage.database import Database

if TYPE_CHECKING:
    from backend.jobs.runner import Runner
    from backend.services import Services

EXTENSION = "dingpass"
UNSIGNED = {
    "/healthz",
    *lifecycle.HOOKS,
}  # FC calls the hooks; nothing else is unsigned


def create_app(
    config: Config,
    *,
    clock: Callable[[], datetime] | None = None,
    catalogue: Catalogue | None = None,
    kick: Callable[[], None] | None = None,
) -> Flask:
    """Build the backend app for ``config``; the entry points are the only callers."""
    if not config.proxy_secret:
        raise ConfigError("PROXY_SECRET is not set: the backend would accept no request")
    app = Flask("backend")
    app.config["MAX_CONTENT_LENGTH"] = defaults.MAX_BODY
    app.extensions[EXTENSION] = config
    database = Database(config.database)
    clock = clock or utc_now
    products = catalogue if catalogue is not None else load_catalogue(config.catalogue_file)
    limits = Limits(config.rate_limit_per_ip, config.rate_limit_per_email, config.rate_limit_window)
    app.extensions["database"] = database
    app.extensions[CLOCK] = clock
    app.extensions["catalogue"] = products
    kick = kick or configured_kick(config.fc_runner_function, config.fc_endpoint) or _no_kick
    jobs = _in_process_runner(config, database, products, clock, kick)
    app.extensions["runner"] = jobs  # a function: call it for the runner
    app.extensions["applications"] = Applications(
        database,
        products,
        limits,
        config.public_base_url,
        clock,
        kick=kick,
    )
    plugins = all_plugins()
    app.extensions["changes"] = Changes(
        database, change_types(plugins), plugins, clock, kick, config.change_forms
    )
    # Read on first use: in development it is made in the var folder, which only codes need.
    code_key = functools.cache(functools.partial(hash_key, config))
    app.extensions[codes_api.KEY] = code_key
    app.extensions["redemptions"] = Redemptions(
        database,
        products,
        code_key,
        RedeemLimits(),
        clock,
        config.public_base_url,
        run_now=lambda job_id: jobs().run_one(only=job_id),
        kick=kick,
    )
    app.register_blueprint(changes_api.bp)
    app.register_blueprint(codes_api.bp)
    taken = (config.proxy_secret, config.proxy_secret_previous)
    _require_signatures(app, tuple(secret.encode() for secret in taken if secret))
    lifecycle.register(app, database)
    error_handlers.register(app)
    app.register_blueprint(applications_api.bp)
    app.register_blueprint(redemptions_api.bp)
    app.add_url_rule("/healthz", "health", lambda: {"status": "ok"})
    return app


def _no_kick() -> None:
    """Nothing to wake: a runner's timer, or a test, runs the jobs."""


def _in_process_runner(
    config: Config,
    database: Database,
    catalogue: Catalogue,
    clock: Callable[[], datetime],
    kick: Callable[[], None],
) -> Callable[[], "Runner[Services]"]:
    """The runner a redemption does its job with before answering, made on its first call.

    Only the codes page needs it: building it (every kind of job, DingTalk's opener) at start
    would put a third of the backend's own imports on every cold start, to spare the first
    redemption of an instance the wait. Two first calls at once may each make one: they differ
    only in per-process caches (a token, HTTP sessions); what runners share is in the database.
    """

    @functools.cache
    def made() -> "Runner[Services]":
        from backend.approvals.wiring import instance_opener
        from backend.work import runner, services

        opener = instance_opener(config, database, catalogue, clock)
        return runner(config, services(config, database, catalogue, opener, clock, kick))

    return made


def _require_signatures(app: Flask, secrets: tuple[bytes, ...]) -> None:
    """Refuse unsigned requests; keep what the signature vouches for in g.client_ip and
    g.idempotency_key (None when the request has no key)."""

    @app.before_request
    def check_signature() -> None:
        # The signed API's callers (changes, codes) sign as API Gateway apps do (backend.apps),
        # not as the proxy.
        if request.path in UNSIGNED or request.path.startswith(changes_api.PREFIX + "/"):
            return
        path = request.full_path.rstrip("?")
        signed = signed_requests.check(
            secrets,
            request.method,
            path,
            dict(request.headers),
            whole_body(defaults.MAX_BODY),
            time.time(),
            defaults.SIGNATURE_MAX_AGE,
        )
        g.client_ip, g.idempotency_key = signed.client_ip, signed.idempotency_key
