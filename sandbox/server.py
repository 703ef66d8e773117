"""The DingTalk sandbox as a running server on loopback."""

import threading
from dataclasses import dataclass

from flask import Flask
from werkzeug.serving import make_server

from sandbox import work_notices
from sandbox.console import console
from sandbox.delivery import CallbackTarget, Deliverer
from sandbox.dingtalk_api import api, faults, record
from sandbox.forms import CLOUD_REQUEST_FORM, LICENSE_FORM_NAME, FormTemplate, text_form
from sandbox.state import AGENT_ID, FORM_COMPONENTS, USERS, SandboxState
from sandbox.stream_gateway import DISCONNECT_GRACE, PING_EVERY, StreamGateway


@dataclass(frozen=True)
class SandboxSettings:
    """The sandbox's one app, its organisation, its approval forms, and where events go."""

    app_key: str
    app_secret: str
    process_code: str
    """The license form's process code (the form dingpass opens instances on)."""
    form_components: tuple[str, ...] = FORM_COMPONENTS
    """The labels of the license form's text fields: a start with any other is refused."""
    forms: tuple[FormTemplate, ...] = (CLOUD_REQUEST_FORM,)
    """The organisation's other forms, beside the license form."""
    users: tuple[tuple[str, str], ...] = USERS
    """The organisation's employees: (userId, name)."""
    agent_id: int = AGENT_ID
    """The app's AgentId, which work notifications must name."""
    corp_id: str = "dingsandboxcorp"
    callback: CallbackTarget | None = None
    retry_scale: float = 1.0
    stream: bool = True
    stream_redeliver_after: float = 10.0
    stream_ping_every: float = PING_EVERY
    stream_disconnect_grace: float = DISCONNECT_GRACE
    qps_limit: int | None = None
    """Calls each app may make to each API per second (DingTalk's is 20); None: no limit.
    The fault switch ``qps_limit`` changes it while the sandbox runs."""

    def all_forms(self) -> dict[str, FormTemplate]:
        """Every form by its process code: the license form, then the others."""
        license_form = text_form(self.process_code, LICENSE_FORM_NAME, self.form_components)
        return {form.process_code: form for form in (license_form, *self.forms)}


def create_app(state: SandboxState, deliverer: Deliverer) -> Flask:
    """The sandbox's Flask app over ``state``."""
    app = Flask("sandbox")
    app.extensions["sandbox"] = (state, deliverer)
    app.before_request(faults)  # API calls only: faults() knows them by endpoint
    app.after_request(record)
    app.register_blueprint(api)
    app.register_blueprint(work_notices.bp)
    app.register_blueprint(console)
    return app


class Sandbox:
    """DingTalk's API, console and event delivery, served in a thread."""

    def __init__(self, settings: SandboxSettings, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = SandboxState(
            settings.app_key,
            settings.app_secret,
            settings.all_forms(),
            dict(settings.users),
            settings.agent_id,
        )
        self.state.faults.qps_limit = settings.qps_limit
        self.deliverer = Deliverer(
            self.state, settings.corp_id, settings.callback, settings.retry_scale
        )
        if settings.stream:
            self.deliverer.gateway = StreamGateway(
                settings.app_key,
                settings.app_secret,
                settings.corp_id,
                settings.stream_redeliver_after,
                settings.stream_ping_every,
                settings.stream_disconnect_grace,
            ).start(host)
        self.app = create_app(self.state, self.deliverer)
        self._server = make_server(host, port, self.app, threaded=True)
        self.url = f"http://{host}:{self._server.server_port}"

    def start(self) -> "Sandbox":
        """Serve in a background thread."""
        threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="sandbox", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self.deliverer.gateway is not None:
            self.deliverer.gateway.stop()
        self._server.shutdown()
        self._server.server_close()
