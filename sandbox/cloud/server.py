"""The cloud sandbox as a running server on loopback, like the DingTalk sandbox's ``Sandbox``."""

import threading
import time
from collections.abc import Callable, Iterable, Mapping

from werkzeug.serving import WSGIRequestHandler, make_server

from sandbox.cloud import ecs, price, ram, vpc
from sandbox.cloud.app import CloudApp
from sandbox.cloud.auth import Authenticator, Key
from sandbox.cloud.faults import Faults
from sandbox.cloud.state import CloudState

KeyTable = Mapping[str, str | tuple[str, str]]
"""Access key id -> secret, or -> (secret, STS security token) for a temporary key."""


class _Handler(WSGIRequestHandler):
    """werkzeug's handler without its request line: a v1-signed URL carries the STS token."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Say nothing: the app logs one line per call, without credentials."""


def _keys(table: KeyTable) -> dict[str, Key]:
    return {
        key_id: Key(value) if isinstance(value, str) else Key(*value)
        for key_id, value in table.items()
    }


class CloudSandbox:
    """VPC, ECS and RAM on one host:port, served in a thread.

    Point the official SDK clients at it with ``Config(endpoint=sandbox.endpoint,
    protocol='http', access_key_id=..., access_key_secret=..., region_id=...)``.
    """

    def __init__(
        self,
        keys: KeyTable,
        ready_after: float = 2.0,
        host: str = "127.0.0.1",
        port: int = 0,
        custom_policies: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = CloudState(ready_after, clock)
        self.state.custom_policies.update(custom_policies)
        self.faults = Faults()
        self.auth = Authenticator(_keys(keys), clock)
        registries = (vpc.actions, ecs.actions, price.actions, ram.actions)
        self.app = CloudApp(self.state, self.faults, self.auth, registries)
        self._server = make_server(host, port, self.app, threaded=True, request_handler=_Handler)
        self.endpoint = f"{host}:{self._server.server_port}"
        """``host:port``, as the SDK's ``Config.endpoint`` wants it (no scheme)."""
        self.url = f"http://{self.endpoint}"

    @property
    def ready_after(self) -> float:
        """Seconds from creation to Available/Running, for resources created from now on."""
        return self.state.ready_after

    @ready_after.setter
    def ready_after(self, seconds: float) -> None:
        self.state.ready_after = seconds

    def add_key(self, access_key_id: str, secret: str, token: str | None = None) -> None:
        """Accept another access key (with ``token``: a temporary STS key)."""
        self.auth.keys[access_key_id] = Key(secret, token)

    def count(self, kind: str, status: str | None = None) -> int:
        """How many resources of ``kind`` exist (``vpc``, ``vswitch``, ``security_group``,
        ``instance``, ``user``), with ``status`` when one is given."""
        return self.state.count(kind, status)

    def start(self) -> "CloudSandbox":
        """Serve in a background thread."""
        threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="cloud-sandbox", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
