"""The DingTalk sandbox as a running server on loopback."""

import threading
from dataclasses import dataclass

from werkzeug.serving import make_server

from sandbox.delivery import CallbackTarget, Deliverer
from sandbox.dingtalk_api import create_app
from sandbox.state import FORM_COMPONENTS, SandboxState
from sandbox.stream_gateway import DISCONNECT_GRACE, PING_EVERY, StreamGateway


@dataclass(frozen=True)
class SandboxSettings:
    """The sandbox's one app, its approval form, and where its events go."""

    app_key: str
    app_secret: str
    process_code: str
    form_components: tuple[str, ...] = FORM_COMPONENTS
    """The names (labels) of the form's components: a start with any other is refused."""
    corp_id: str = "dingsandboxcorp"
    callback: CallbackTarget | None = None
    retry_scale: float = 1.0
    stream: bool = True
    stream_redeliver_after: float = 10.0
    stream_ping_every: float = PING_EVERY
    stream_disconnect_grace: float = DISCONNECT_GRACE


class Sandbox:
    """DingTalk's API, console and event delivery, served in a thread."""

    def __init__(self, settings: SandboxSettings, host: str = "127.0.0.1", port: int = 0) -> None:
        forms = {settings.process_code: frozenset(settings.form_components)}
        self.state = SandboxState(settings.app_key, settings.app_secret, forms)
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
