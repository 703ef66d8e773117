"""The backend as the frontend sees it: one pooled keep-alive session, short timeouts."""

import time
from collections.abc import Callable
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter

from frontend.exceptions import BackendTimeout, BackendUnavailable
from frontend.signed_requests import signed_headers

CONNECT_TIMEOUT = 2.0
"""Seconds to open a connection; the read timeout is the configured backend timeout."""
POOL_SIZE = 16


@dataclass(frozen=True)
class BackendResponse:
    """What the backend answered, to relay."""

    status: int
    body: bytes
    retry_after: str | None


class BackendClient:
    """Sends signed requests to the backend over one pooled session."""

    def __init__(
        self, base_url: str, secret: str, timeout: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.base_url, self.secret, self.clock = base_url, secret.encode(), clock
        self.timeout = (CONNECT_TIMEOUT, timeout)
        self.session = requests.Session()
        self.session.trust_env = False  # never send our own backend calls through a proxy
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=POOL_SIZE, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def send(
        self,
        method: str,
        path: str,
        body: bytes,
        client_ip: str,
        idempotency_key: str | None = None,
    ) -> BackendResponse:
        """Forward one request; BackendUnavailable or BackendTimeout if it fails."""
        stamp = int(self.clock())
        headers = signed_headers(self.secret, method, path, stamp, client_ip, idempotency_key, body)
        headers["Content-Type"] = "application/json"
        try:
            answer = self.session.request(
                method, self.base_url + path, data=body, headers=headers, timeout=self.timeout
            )
        except requests.Timeout as err:
            raise BackendTimeout(str(err)) from None
        except requests.RequestException as err:
            raise BackendUnavailable(str(err)) from None
        return BackendResponse(
            answer.status_code, answer.content, answer.headers.get("Retry-After")
        )

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()
