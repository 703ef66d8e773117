"""Reading a request's body whole, or refusing it: a chunked body has no length to check first."""

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge


def whole_body(limit: int) -> bytes:
    """The request body (cached for the view); 413 past ``limit`` bytes, also when chunked."""
    # One byte more than we take: a chunked body that goes on past the limit shows itself,
    # where reading to the limit alone would hand on its first bytes as if they were all.
    request.max_content_length = limit + 1
    body = request.get_data()
    if len(body) > limit:
        raise RequestEntityTooLarge()
    return body
