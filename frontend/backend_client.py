"""The backend as the frontend sees it: one pooled keep-alive session, short timeouts.

Every request carries the proxy's HMAC signature. On Function Compute it is also signed
with the frontend's temporary credentials, as the backend's ``function``-auth trigger wants,
in the scheme of the FC generation that runs it (frontend/fc_signature.py).
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from frontend.exceptions import BackendTimeout, BackendUnavailable
from frontend.fc_signature import FcCredentials, FcScheme, fc2_trigger_headers, trigger_headers
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
        self,
        base_url: str,
        secret: str,
        timeout: float,
        clock: Callable[[], float] = time.time,
        scheme: FcScheme = "fc3",
    ) -> None:
        self.base_url, self.secret, self.clock = base_url, secret.encode(), clock
        self.scheme = scheme
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
        credentials: FcCredentials | None = None,
    ) -> BackendResponse:
        """Forward one request; BackendUnavailable or BackendTimeout if it fails.

        With ``credentials`` (FC's, from the request being relayed) FC's gateway can check it.
        """
        now = self.clock()
        url = self.base_url + path
        headers = signed_headers(
            self.secret, method, path, int(now), client_ip, idempotency_key, body
        )
        headers["Content-Type"] = "application/json"
        if credentials is not None:
            headers.update(self._fc_headers(credentials, method, urlsplit(url).path, headers, now))
        try:
            answer = self.session.request(
                method, url, data=body, headers=headers, timeout=self.timeout
            )
        except requests.Timeout as err:
            raise BackendTimeout(str(err)) from None
        except requests.RequestException as err:
            raise BackendUnavailable(str(err)) from None
        return BackendResponse(
            answer.status_code, answer.content, answer.headers.get("Retry-After")
        )

    def _fc_headers(
        self,
        credentials: FcCredentials,
        method: str,
        path: str,
        headers: dict[str, str],
        now: float,
    ) -> dict[str, str]:
        if self.scheme == "fc2":
            return fc2_trigger_headers(credentials, method, path, headers, now)
        return trigger_headers(credentials, method, path, now)

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()
