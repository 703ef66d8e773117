"""Kept-alive HTTP connections to the backend, reused while the backend keeps them open.

The standard library's http.client, pooled here in a few lines, rather than urllib3's pool:
every page call crosses this hop, and urllib3's layers over the same http.client connection
(its response and header objects, its retry and redirect machinery, none of which the hop
uses) cost 0.5 ms of CPU per call where http.client alone costs 0.27 (bench/proxy_hop.py).
"""

import http.client
import select
import ssl
import threading
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import unquote, urlsplit

from frontend.exceptions import BackendTimeout, BackendUnavailable


@dataclass(frozen=True)
class Answer:
    """The backend's answer: its status, headers (by lower-case name) and whole body."""

    status: int
    headers: dict[str, str]
    body: bytes


class BackendPool:
    """Connections to the host of one http(s) URL, the idle ones kept for the next call.

    As many connections as calls at once, of which up to ``size`` are kept once idle. A kept
    one the backend has since closed (gunicorn closes a connection idle for a few seconds) is
    dropped before use. A call is never sent twice: the backend's answer, or the failure, goes
    back as it is.
    """

    def __init__(
        self,
        url: str,
        connect_timeout: float,
        read_timeout: float,
        size: int,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """``tls``: whom an https backend is checked against; by default, the system's CAs."""
        parts = urlsplit(url)
        # An IPv6 zone comes %25-escaped in a URL and plain to the resolver.
        self.host, self.port = unquote(parts.hostname or ""), parts.port
        self.https, self._tls = parts.scheme == "https", tls
        self.connect_timeout, self.read_timeout, self.size = connect_timeout, read_timeout, size
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def exchange(
        self, method: str, target: str, body: bytes | None, headers: dict[str, str]
    ) -> Answer:
        """Send one request and read its whole answer; BackendUnavailable or BackendTimeout."""
        connection = self._connection()
        try:
            connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
            body = response.read()
        except TimeoutError as err:
            connection.close()
            raise BackendTimeout(f"no answer within {self.read_timeout:g} s: {err}") from None
        except (OSError, http.client.HTTPException) as err:
            connection.close()
            raise BackendUnavailable(f"the exchange failed: {err!r}") from None
        self._keep(connection)
        headers = {name.lower(): value for name, value in response.getheaders()}
        return Answer(response.status, headers, body)

    def close(self) -> None:
        """Close the idle connections; one in use closes when its call is done with it."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _connection(self) -> http.client.HTTPConnection:
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                return self._connect()
            if not _dropped(connection):
                return connection
            connection.close()

    @cached_property
    def tls(self) -> ssl.SSLContext:
        """The https backend's checks, made on the first connection: reading the system's CAs
        is no part of a cold start."""
        return self._tls or ssl.create_default_context()

    def _connect(self) -> http.client.HTTPConnection:
        if self.https:
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                self.host, self.port, timeout=self.connect_timeout, context=self.tls
            )
        else:
            connection = http.client.HTTPConnection(self.host, self.port, self.connect_timeout)
        try:
            connection.connect()
        except TimeoutError as err:
            raise BackendTimeout(
                f"no connection within {self.connect_timeout:g} s: {err}"
            ) from None
        except OSError as err:  # refused, unreachable, a name that does not resolve, TLS
            raise BackendUnavailable(f"no connection: {err!r}") from None
        connection.sock.settimeout(self.read_timeout)
        return connection

    def _keep(self, connection: http.client.HTTPConnection) -> None:
        # http.client lets go of the socket when the answer said it would close the connection.
        with self._lock:
            if connection.sock is not None and len(self._idle) < self.size:
                self._idle.append(connection)
                return
        connection.close()


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """Whether an idle connection can no longer carry a call: closed by the backend (readable
    at its end), or holding bytes no request asked for. Either way it is readable."""
    if connection.sock is None:
        return True
    poller = select.poll()
    poller.register(connection.sock, select.POLLIN)
    return bool(poller.poll(0))
