"""gunicorn's settings for every function: `./bootstrap` runs ``-c python:backend.gunicorn_conf``.

What the stock gthread worker and logger do not do:

* A slow client must not hold a worker thread. gunicorn's gthread worker hands a connection to a
  thread as soon as its first byte arrives, and the thread then blocks reading the rest of the
  request: four clients that each send one byte every two seconds hold all four threads of
  bootstrap's one worker, and /healthz waits. ``WholeRequestWorker`` reads each request in the
  worker's event loop, without a thread, and hands it to a thread only once it has arrived in
  full (its head, and a body of up to ``BODY_LIMIT_BYTES``); a request that has not arrived
  within ``ARRIVAL_SECONDS`` is closed.

  Why not an asynchronous worker class: gevent (with greenlet, zope.event and zope.interface) is
  16 MB more in the code package, and measured with bootstrap's master and two workers it added
  5 MiB of RSS to each process, 15 MiB per instance, where the frontend already has 96 MiB and
  the backend 146 MiB (issue 13 wants each under 96 MiB). It also monkey-patches the threads and
  sockets that the runner and the SQLAlchemy pool rely on, and slows the cold start. gthread with
  this guard keeps gunicorn's own worker and dependencies, and costs nothing until a client is
  slow. The guard reads plain HTTP/1.1 only, which is what FC's HTTP trigger sends.

* An answer's head leaves with its body, in one write where gunicorn makes two, so the client
  gets one segment and wakes once (backend/answer_socket.py).

* Every line is in the one log format (backend/request_log.py), with the request id, and
  carries no status token: ``RedactingLogger`` cuts them to their first 4 characters
  (``/status/AbCd…``).

And for a quick cold start (bench/cold_start.py measures it): no garbage collection while a
worker builds its app, and no control socket.
"""

import contextlib
import gc
import math
import re
import selectors
import socket
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from gunicorn.glogging import Logger  # type: ignore[import-untyped]
from gunicorn.workers.gthread import ThreadWorker  # type: ignore[import-untyped]

from backend import request_log
from backend.answer_socket import HeadHoldingSocket

ARRIVAL_SECONDS = 10.0
"""Time a request has to arrive in full, from the connection (or the previous response) on."""
HEAD_LIMIT_BYTES = 16 * 1024
"""A request head larger than this is refused (431): no dingpass request comes near it."""
BODY_LIMIT_BYTES = 16 * 1024
"""The apps' MAX_BODY: a body must arrive whole before a thread takes the request, and a larger
one is refused (413) without being read."""
HEARTBEAT_SECONDS = 1.0
"""The least time between two of a worker's signs of life (less under a --timeout below 8 s)."""
RECV_BYTES = 64 * 1024
DRAIN_BYTES = 256 * 1024
"""What a refused request may still have waiting, read before its answer so that closing the
connection does not reset it."""

worker_class = "backend.gunicorn_conf.WholeRequestWorker"
logger_class = "backend.gunicorn_conf.RedactingLogger"
control_socket_disable = True
"""Nothing on Function Compute runs gunicornc: without the socket the master starts no asyncio
loop in a thread (stopped and started again around every fork), and writes nothing under $HOME."""

_HEAD_END = re.compile(rb"\r?\n\r?\n")
_CONTENT_LENGTH = re.compile(rb"^content-length:[ \t]*(\d{1,9})[ \t]*\r?$", re.I | re.M)
_CHUNKED = re.compile(rb"^transfer-encoding:[^\r\n]*chunked", re.I | re.M)
_EXPECT_CONTINUE = re.compile(rb"^expect:[ \t]*100-continue", re.I | re.M)
TOO_LARGE = -1
"""request_size's answer for a body over BODY_LIMIT_BYTES."""
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_BODY_TOO_LARGE = (
    b"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
)

_TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n"
    b"Content-Length: 0\r\n\r\n"
)
_REDACT = request_log.RedactTokens()


def pre_request(worker: Any, req: Any) -> None:
    """Begin each request's id before its app runs: FC's, or a new one.

    The frontend's app sets none of its own (it imports nothing of the backend), so its lines
    carry this one; the backend's apps begin the same id again from FC's header.
    """
    header = next((value for name, value in req.headers if name == "X-FC-REQUEST-ID"), None)
    request_log.begin(request_log.request_id_from(header))


def post_fork(server: Any, worker: Any) -> None:
    """In a new worker, before it imports and builds its app: no garbage collection meanwhile.

    Building the backend's app makes some 120,000 objects and leaves about 500 of them garbage,
    yet the collector scans them over and over as they pile up: a tenth of the worker's start,
    which Function Compute's fraction of a vCPU stretches to up to a second.
    """
    gc.disable()


def post_worker_init(worker: Any) -> None:
    """The app is built: its objects live as long as the worker, so no collection scans them
    again (and the few hundred left over from the imports stay)."""
    gc.freeze()
    gc.enable()


def request_size(data: bytes | bytearray) -> int | None:
    """How many bytes of ``data`` make its first request whole: its head and its body, sized by
    Content-Length or chunked. None while that is not known yet; TOO_LARGE for a body over
    BODY_LIMIT_BYTES."""
    end = _HEAD_END.search(data)
    if end is None:
        return None
    head = data[: end.start()]
    if _CHUNKED.search(head):
        return _chunked_end(data, end.end())
    length = _CONTENT_LENGTH.search(head)
    body = int(length.group(1)) if length else 0
    return TOO_LARGE if body > BODY_LIMIT_BYTES else end.end() + body


def _chunked_end(data: bytes | bytearray, start: int) -> int | None:
    """Where a chunked body that begins at ``start`` ends (after its trailers), if it is in."""
    at = start
    while True:
        line_end = data.find(b"\r\n", at)
        if line_end < 0:
            return None
        try:
            size = int(bytes(data[at:line_end]).split(b";")[0], 16)
        except ValueError:
            return len(data)  # not chunked framing: gunicorn's parser answers it with a 400
        if size == 0:
            trailers = data.find(b"\r\n\r\n", line_end)
            return None if trailers < 0 else trailers + 4
        at = line_end + 2 + size + 2
        if at - start > BODY_LIMIT_BYTES:
            return TOO_LARGE
        if at > len(data):
            return None


def _expects_continue(data: bytes | bytearray) -> bool:
    end = _HEAD_END.search(data)
    return end is not None and _EXPECT_CONTINUE.search(data[: end.start()]) is not None


@dataclass
class _Arrival:
    """A request on its way in: the bytes so far, and when it stops being waited for."""

    deadline: float
    data: bytearray = field(default_factory=bytearray)


class WholeRequestWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker, except that a thread only ever takes a request that is in.

    It hooks gunicorn 27's ThreadWorker where every connection passes on its way to a thread
    (``enqueue_req``: new, kept-alive and pipelined connections alike) and where the event loop
    sweeps expired connections (``murder_keepalived``, also run when the worker stops).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.arriving: dict[Any, _Arrival] = {}  # in deadline order: the deadline is fixed
        self.notified = -math.inf

    def notify(self) -> None:
        """Tell the master this worker is alive, unless it did so within the heartbeat.

        gthread's loop calls this on every turn, two or three a request, and each is a
        utime() of the heartbeat file. A turn comes at least every second (its select's
        timeout), so beats are at most heartbeat + 1 s apart; gunicorn asks for one every
        ``self.timeout`` (half of --timeout), which a quarter of it leaves room for.
        """
        now = time.monotonic()
        if now - self.notified >= min(HEARTBEAT_SECONDS, self.timeout / 4):
            self.notified = now
            super().notify()

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        """Refuse what the guard cannot read: it sees raw bytes, so TLS and HTTP/2 are out."""
        super().check_config(cfg, log)
        if cfg.is_ssl or set(cfg.http_protocols) - {"h1"}:
            raise RuntimeError(
                "WholeRequestWorker serves plain HTTP/1.1: terminate TLS in front of gunicorn"
                " (Function Compute does), and leave http_protocols at h1"
            )

    def enqueue_req(self, conn: Any) -> None:
        """Give ``conn`` to a thread if its request is in, else wait for it in the event loop.

        gthread calls this for new connections, kept-alive ones that became readable, and ones
        whose parser holds bytes already (a pipelined request): each waits here. What the
        socket holds is read at once: a kept-alive connection comes readable, most often with
        its whole request, which would otherwise wait one more turn of the loop.
        """
        held = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        arrival = _Arrival(time.monotonic() + ARRIVAL_SECONDS)
        conn.sock.setblocking(False)
        # What the parser held is judged as if it had just come: too large, or waiting for
        # 100 Continue, as much as a request read from the socket.
        if held and self._add(conn, arrival, held):
            return
        if not self._receive(conn, arrival):
            self.arriving[conn] = arrival
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))

    def handle(self, conn: Any) -> Any:
        """Serve the request: gunicorn's parser reads what arrived before it reads the socket."""
        arrived, conn.arrived = getattr(conn, "arrived", b""), b""
        if arrived:
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(arrived)
        return super().handle(conn)

    def handle_request(self, req: Any, conn: Any) -> Any:
        """Serve ``req``, its answer's head sent with its body (backend/answer_socket.py).

        Only the answer sees the holding socket: the connection gets its own socket back before
        gunicorn writes an error page to it or returns it to the event loop.
        """
        sock = conn.sock
        conn.sock = answer = HeadHoldingSocket(sock, head_request=req.method == "HEAD")
        try:
            return super().handle_request(req, conn)
        finally:
            conn.sock = sock
            with contextlib.suppress(OSError):  # the client is gone: nothing to send it
                answer.flush()

    def murder_keepalived(self, force: bool = False) -> None:
        """Close idle kept-alive connections, and requests that did not arrive in time."""
        super().murder_keepalived(force)
        now = time.monotonic()
        for conn, arrival in list(self.arriving.items()):
            if arrival.deadline > now and not force:
                break
            self.log.debug("closing %s: no whole request in %s s", conn.client, ARRIVAL_SECONDS)
            self._close(conn, _TIMED_OUT if arrival.data else b"")

    def _on_readable(self, conn: Any, _sock: socket.socket) -> None:
        self._receive(conn, self.arriving[conn])

    def _receive(self, conn: Any, arrival: _Arrival) -> bool:
        """Read what ``conn`` holds into ``arrival``, then hand the request over or refuse it;
        False while it is still arriving (its socket non-blocking)."""
        try:
            data = conn.sock.recv(RECV_BYTES)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:  # the client went away
            self._close(conn, b"")
            return True
        return self._add(conn, arrival, data)

    def _add(self, conn: Any, arrival: _Arrival, data: bytes) -> bool:
        """Add ``data`` to ``arrival``, then hand the request over or refuse it (True), or
        wait for more (False), having told a client that expects it to go on."""
        had_head = request_size(arrival.data) is not None
        arrival.data += data
        size = request_size(arrival.data)
        if size == TOO_LARGE:
            self._close(conn, _BODY_TOO_LARGE)
        elif size is not None and len(arrival.data) >= size:
            self._hand_over(conn, arrival)
        elif size is None and len(arrival.data) > HEAD_LIMIT_BYTES:
            self._close(conn, _TOO_LARGE)
        else:
            if not had_head and _expects_continue(arrival.data):
                # The client waits for this before it sends the body; gunicorn says it again
                # in the thread, and a second interim answer is allowed (RFC 9110 15.2).
                with contextlib.suppress(OSError):
                    conn.sock.send(_CONTINUE)
            return False
        return True

    def _hand_over(self, conn: Any, arrival: _Arrival) -> None:
        self._stop_waiting(conn)
        conn.arrived = bytes(arrival.data)
        conn.data_ready = True  # gthread's own wait for a first byte is over, too
        super().enqueue_req(conn)

    def _close(self, conn: Any, answer: bytes) -> None:
        self._stop_waiting(conn)
        self.nr_conns -= 1
        if answer:
            # Closing with unread bytes resets the connection, and the client loses the answer.
            _drain(conn.sock)
            with contextlib.suppress(OSError):  # non-blocking: a full buffer loses the courtesy
                conn.sock.send(answer)
        conn.close()

    def _stop_waiting(self, conn: Any) -> None:
        if self.arriving.pop(conn, None) is not None:
            self.poller.unregister(conn.sock)


def _drain(sock: socket.socket) -> None:
    """Read what a non-blocking socket holds already, up to DRAIN_BYTES (a flood stops there)."""
    left = DRAIN_BYTES
    with contextlib.suppress(OSError):  # BlockingIOError: nothing more is waiting
        while left > 0 and (data := sock.recv(min(left, RECV_BYTES))):
            left -= len(data)


class RedactingLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger, writing the one format of backend/request_log.py.

    Its own lines, its access lines and (through the root logger, configured here before the
    workers start) whatever the app logs: key=value with the request id, status tokens cut to
    their first 4 characters (``/status/AbCd…``).
    """

    def setup(self, cfg: Any) -> None:
        """Set gunicorn's loggers up, then give both the format (again after a reload)."""
        super().setup(cfg)
        request_log.configure(requests=False)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(request_log.KeyValueFormatter())
            log.addFilter(_REDACT)  # one filter: addFilter skips one already there

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        """Write the access line under the request's id: its app's, or FC's."""
        # The app's id (a backend app makes its own), else the one pre_request began with.
        request_id = environ.get(request_log.ENVIRON_KEY) or request_log.current_request_id()
        with request_log.logging_for(request_id):
            super().access(resp, req, environ, request_time)
