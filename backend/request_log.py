"""Log lines carry Function Compute's request id (x-fc-request-id), to follow a request in SLS."""

import logging

from flask import has_request_context, request

FORMAT = "%(levelname)s %(name)s [%(request_id)s]: %(message)s"


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record: FC's id inside a request, '-' outside one."""

    def filter(self, record: logging.LogRecord) -> bool:
        inside = has_request_context()
        record.request_id = (request.headers.get("x-fc-request-id") if inside else None) or "-"
        return True


def configure() -> None:
    """Log to stderr (FC ships it to SLS) with the request id on each line."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RequestIdFilter())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
