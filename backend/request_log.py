"""What log lines carry: FC's request id (x-fc-request-id), to follow a request in SLS, and never
a status token in full."""

import logging
import re

FORMAT = "%(levelname)s %(name)s [%(request_id)s]: %(message)s"

_TOKEN_IN_PATH = re.compile(r"(/applications/|/status/)([^/?#\s\"]{4})[^/?#\s\"]+")
"""A status token in a path: the page's /status/…, the frontend's /api/applications/… and the
backend's /applications/…; its first characters stay, to tell requests apart."""


def redact_tokens(text: str) -> str:
    """``text`` with every status token in a path cut to its first 4 characters and '…'.

    A status token is the only key to an application's status page, so a log line, which
    many people can read in SLS, must not carry it whole.
    """
    return _TOKEN_IN_PATH.sub(r"\1\2…", text)


class RedactTokens(logging.Filter):
    """Cuts status tokens out of a record's message (access lines, request lines, errors)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_tokens(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record: FC's id inside a request, '-' outside one."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Imported here: gunicorn's master process imports this module for RedactTokens, and
        # must not pull Flask in (memory counts on a 128 MiB instance).
        from flask import has_request_context, request

        inside = has_request_context()
        record.request_id = (request.headers.get("x-fc-request-id") if inside else None) or "-"
        return True


def configure() -> None:
    """Log to stderr (FC ships it to SLS) with the request id on each line."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RequestIdFilter())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
