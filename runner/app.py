"""The runner function's Flask app: FC's timer and asynchronous invocations at POST /invoke."""

import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from flask import Flask, request

from backend import lifecycle
from backend.checks.run import CheckSettings, check_now
from backend.clock import utc_now
from backend.cloud.credentials import CloudCredentials
from backend.config import Config
from backend.jobs.kick import PAYLOAD as KICK
from backend.services import Services
from backend.work import standalone_runner

log = logging.getLogger(__name__)


def create_app(config: Config, *, clock: Callable[[], datetime] | None = None) -> Flask:
    """Build the runner app: every invocation runs jobs as they fall due, for RUNNER_BUDGET
    seconds at most."""
    clock = clock or utc_now
    jobs = standalone_runner(config, clock)
    database = jobs.database
    checks = CheckSettings.from_config(config)
    kicked_by = _source(KICK)
    app = Flask("runner")
    app.extensions["database"] = database

    @app.post("/invoke")
    def invoke() -> dict[str, object]:
        # The timer's event or a kick's: either way the work is whatever is due in the database.
        source = _source(request.get_data())
        if source != kicked_by:
            # The timer's pass (once a minute): the checks first, so what they record runs now.
            check_now(jobs.context, checks, clock)
        ran = jobs.run_until(time.monotonic() + config.runner_budget, _invoked_with(jobs.context))
        log.info("runner invoked by %s: ran %d job(s)", source, ran)
        return {"ran": ran, "source": source}

    lifecycle.register(app, database)
    app.add_url_rule("/healthz", "health", lambda: {"status": "ok"})
    return app


def _invoked_with(context: Services) -> Services:
    """The runner's services, calling the cloud with the credentials this invocation brought.

    On Function Compute each invocation carries the function role's temporary STS
    credentials in its headers; they expire, so each pass uses its own.
    """
    credentials = CloudCredentials.from_fc_headers(dict(request.headers))
    if credentials is None or context.changes is None:
        return context
    return replace(context, changes=context.changes.with_credentials(credentials))


def _source(body: bytes) -> str:
    try:
        event = json.loads(body or b"{}")
    except ValueError:
        return "unknown"
    if not isinstance(event, dict):
        return "unknown"
    return str(
        event.get("source")
        or event.get("triggerName")
        or ("timer" if "triggerTime" in event else "unknown")
    )
