"""One log format for every process: key=value lines that carry the request id, never a status
token in full, and no terminal escape codes.

A line is ``time=… level=… logger=… request_id=… msg=…``; ``msg`` comes last and runs to the end of
the line, so the message needs no quoting; control characters in it (a traceback's line breaks
too) are escaped, so one record is one line. ``request_id`` is FC's x-fc-request-id inside a
request, one made up per request where there is none (``dingpass dev``, a test), and ``-`` outside
a request.
"""

import logging
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TextIO

NO_REQUEST = "-"
ENVIRON_KEY = "dingpass.request_id"
"""Where a request's WSGI environ keeps the id its Flask app gave it."""

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_FC_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
"""What FC's ids look like (1-66f0a1b2-1a2b3c4d-5e6f7a8b9c0d); anything else a client sent is
not taken: it could forge a line or hide a request."""

_TOKEN_IN_PATH = re.compile(r"(/applications/|/status/)([^/?#\s\"]{4})[^/?#\s\"]+")
"""A status token in a path: the page's /status/…, the frontend's /api/applications/… and the
backend's /applications/…; its first characters stay, to tell requests apart."""
_CREDENTIAL_HEADER = re.compile(
    r"""(['"](?:authorization|x-fc-security-token|x-acs-security-token|x-fc-access-key-secret)"""
    r"""['"]\s*:\s*['"])[^'"]*""",
    re.IGNORECASE,
)
"""A credential in a logged dict of request headers: FC 2.0's SDK logs a refused call's headers
(its signature and STS token) at ERROR, and SLS is read by many."""
_SECRET_IN_QUERY = re.compile(
    r"([?&](?:access_token|signature|msg_signature)=)[^&#\s\"]+", re.IGNORECASE
)
"""A credential in a URL's query: DingTalk's old API takes its access token there, and its
pushes carry their signatures there; request lines and errors print the URL whole."""
_TERMINAL_CODES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
"""ANSI control sequences, as werkzeug colours its request lines with."""
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\\]")
"""What must not reach a line as itself: line breaks and other controls, and the escape
character, so that an escaped line break cannot be told from a typed one."""
_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def redact_tokens(text: str) -> str:
    """``text`` with every status token in a path cut to its first 4 characters and '…', and
    the credentials of logged request headers and of URLs' queries replaced by '***'.

    A status token is the only key to an application's status page, so a log line, which
    many people can read in SLS, must not carry it whole.
    """
    text = _CREDENTIAL_HEADER.sub(r"\1***", _TOKEN_IN_PATH.sub(r"\1\2…", text))
    return _SECRET_IN_QUERY.sub(r"\1***", text)


def one_line(text: str) -> str:
    """``text`` as one line of a log: escape codes removed, control characters escaped."""
    return _UNSAFE.sub(_escape, _TERMINAL_CODES.sub("", text))


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _ESCAPES.get(char) or (
        f"\\x{ord(char):02x}" if ord(char) <= 0xFF else f"\\u{ord(char):04x}"
    )


def request_id_from(header: str | None) -> str:
    """The id for a request: FC's from its x-fc-request-id header, else a new one."""
    if header and _FC_REQUEST_ID.fullmatch(header):
        return header
    return secrets.token_hex(8)


def current_request_id() -> str:
    """The id of the request being served in this thread, or '-' outside one."""
    return _request_id.get() or NO_REQUEST


@contextmanager
def logging_for(request_id: str) -> Iterator[None]:
    """Log as part of request ``request_id`` within the block, as before it after."""
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)


class RedactTokens(logging.Filter):
    """Cuts status tokens out of a record's message (access lines, request lines, errors)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_tokens(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


class KeyValueFormatter(logging.Formatter):
    """Formats a record as the one line every dingpass process writes."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            text += "\n" + self.formatStack(record.stack_info)
        request_id = getattr(record, "request_id", None) or current_request_id()
        return (
            f"time={_utc(record.created)} level={record.levelname} logger={record.name} "
            f"request_id={request_id} msg={redact_tokens(one_line(text))}"
        )


def _utc(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


def handler(stream: TextIO | None = None) -> logging.Handler:
    """A handler that writes the format to ``stream`` (stderr: FC ships it to SLS)."""
    out = logging.StreamHandler(stream)
    out.setFormatter(KeyValueFormatter())
    out.addFilter(RedactTokens())
    return out


def configure(level: int = logging.INFO, *, requests: bool = True) -> None:
    """Send every log record, warnings and uncaught thread errors through the one format.

    Args:
        requests: give each Flask request in this process its id (imports Flask, which
            gunicorn's master process, configuring only its own lines, does without).
    """
    logging.basicConfig(level=level, handlers=[handler()], force=True)
    # Alembic's progress lines would crowd a command's own result (`dingpass config check`,
    # `db upgrade`); `dingpass -v` brings them back.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.captureWarnings(True)
    threading.excepthook = log_uncaught
    if requests:
        from flask import request_started

        request_started.connect(_on_request_started)


def _on_request_started(sender: Any, **extra: Any) -> None:
    """Every Flask request in the process: take FC's id, or make one."""
    from flask import request

    # Left set when the request ends: werkzeug writes its request line, and gunicorn its
    # access line, after Flask has let the request go; the next request sets its own.
    request_id = request_id_from(request.headers.get("x-fc-request-id"))
    request.environ[ENVIRON_KEY] = request_id  # for gunicorn's access line
    begin(request_id)


def begin(request_id: str) -> None:
    """Log as part of request ``request_id`` in this thread, until the next request begins."""
    _request_id.set(request_id)


def log_uncaught(args: threading.ExceptHookArgs) -> None:
    """A thread's uncaught error as a log line (threading.excepthook), not a bare traceback."""
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread else "?"
    log = logging.getLogger("threading")
    log.error("uncaught %s in thread %s", args.exc_type.__name__, name, exc_info=args.exc_value)


__all__ = [
    "KeyValueFormatter",
    "RedactTokens",
    "begin",
    "configure",
    "current_request_id",
    "handler",
    "log_uncaught",
    "logging_for",
    "one_line",
    "redact_tokens",
    "request_id_from",
]
