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
import zlib
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import unquote, urlsplit

from frontend.exceptions import BackendTimeout, BackendUnavailable


@dataclass(frozen=True)
class Answer:
    """The backend's answer: its status, headers and whole body, decoded as urllib3 would.

    Headers by lower-case name; a header given twice keeps its last value.
    """

    status: int
    headers: dict[str, str]
    body: bytes


DECODED = frozenset({"gzip", "x-gzip", "deflate"})
"""Content-Encodings of an answer that the pool decodes (a relayed caller may ask for them)."""


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
        self.https, self._tls = parts.scheme == "https", tls
        # An IPv6 zone comes %25-escaped in a URL and plain to the resolver; with no port given,
        # http.client would read one out of an IPv6 address.
        self.host = unquote(parts.hostname or "")
        self.port = parts.port or (443 if self.https else 80)
        self.connect_timeout, self.read_timeout, self.size = connect_timeout, read_timeout, size
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._closes = 0
        """How often close() ran: a connection taken before the last one is not kept."""

    def exchange(
        self, method: str, target: str, body: bytes | None, headers: dict[str, str]
    ) -> Answer:
        """Send one request and read its whole answer; BackendUnavailable or BackendTimeout."""
        connection, taken = self._connection(), self._closes
        try:
            connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
            content = response.read()
        except TimeoutError as err:
            connection.close()
            raise BackendTimeout(f"no answer within {self.read_timeout:g} s: {err}") from None
        except (OSError, http.client.HTTPException) as err:
            connection.close()
            raise BackendUnavailable(f"the exchange failed: {err!r}") from None
        self._keep(connection, taken)
        given = {name.lower(): value for name, value in response.getheaders()}
        return Answer(response.status, *_decoded(given, content))

    def close(self) -> None:
        """Close the idle connections; one in use is closed when its call is done with it."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._closes += 1
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
        # Never a second connection behind the pool's back, under the connect timeout.
        connection.auto_open = 0
        return connection

    def _keep(self, connection: http.client.HTTPConnection, taken: int) -> None:
        # http.client lets go of the socket when the answer said it would close the connection.
        with self._lock:
            if (
                connection.sock is not None
                and taken == self._closes
                and len(self._idle) < self.size
            ):
                self._idle.append(connection)
                return
        connection.close()


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """Whether an idle connection can no longer carry a call: closed by the backend (readable
    at its end), or holding bytes no request asked for. Either way it is readable."""
    poller = select.poll()
    poller.register(connection.sock, select.POLLIN)
    return bool(poller.poll(0))


def _decoded(headers: dict[str, str], content: bytes) -> tuple[dict[str, str], bytes]:
    """The answer as sent before its gzip or deflate Content-Encoding, if it has one of them;
    BackendUnavailable if it does not decode."""
    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding not in DECODED:
        return headers, content
    try:  # 32 + 15: a gzip or a zlib header, whichever the answer has
        content = zlib.decompress(content, 32 + zlib.MAX_WBITS)
    except zlib.error as err:
        raise BackendUnavailable(f"an answer said {encoding} and is not: {err}") from None
    kept = {name: value for name, value in headers.items() if name != "content-encoding"}
    return kept, content
