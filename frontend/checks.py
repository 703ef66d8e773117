"""What a public API request must be before the frontend forwards it to the backend."""

import ipaddress
import re

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge

from frontend.exceptions import BadRequest, UnsupportedMediaType

MAX_BODY = 16 * 1024
"""Bytes: a larger body is refused with 413."""
MAX_DEPTH = 32
"""How deep arrays and objects may nest: the form is one flat object, and Python's JSON
parser runs out of stack near 1,000 levels, in the backend as here."""
MAX_CLIENT_IP = 45
"""Characters: the backend's client_ip column, which holds the longest IPv6 text form."""
IDEMPOTENCY_KEY = "Idempotency-Key"
KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A string (to its closing quote, or to the end if it has none) or a bracket: strings are
# skipped whole, so brackets inside them do not count, and no input makes this backtrack.
TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)


def json_content(request: Request) -> None:
    """Refuse a body not declared as JSON: any site may post text or a form without a preflight."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType(
            "请以 application/json 格式提交。",
            f"Send the application as JSON (Content-Type: application/json), "
            f"not {request.mimetype or 'no Content-Type'}.",
        )


def idempotency_key(value: str | None) -> str | None:
    """The submission's Idempotency-Key, if it sent one that can be used."""
    if value is None or KEY.fullmatch(value):
        return value
    message = {
        "zh": "Idempotency-Key 应为 1 到 64 个字母、数字、“_”或“-”。",
        "en": "Idempotency-Key must be 1 to 64 letters, digits, '_' or '-'.",
    }
    raise BadRequest(message["zh"], message["en"], {IDEMPOTENCY_KEY: message})


def body(request: Request) -> bytes:
    """The whole body: 413 past MAX_BODY, also when it came chunked; 400 if it nests too deep."""
    # One byte more than we take: a chunked body that goes on past the limit shows itself,
    # where reading to the limit alone would hand on its first 16 KB as if they were all.
    request.max_content_length = MAX_BODY + 1
    data = request.get_data()
    if len(data) > MAX_BODY:
        raise RequestEntityTooLarge()
    if nesting(data) > MAX_DEPTH:
        raise BadRequest(
            f"请求内容嵌套过深（最多 {MAX_DEPTH} 层）。",
            f"The body nests arrays or objects more than {MAX_DEPTH} deep; send the form as "
            f"one flat JSON object.",
        )
    return data


def nesting(data: bytes) -> int:
    """How deep arrays and objects nest in a JSON text, counted in one pass without parsing it."""
    depth = deepest = 0
    for token in TOKENS.finditer(data):
        if token[0] in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token[0] in (b"]", b"}"):
            depth -= 1
    return deepest


def client_ip(address: str | None) -> str:
    """The visitor's address as chosen from X-Forwarded-For (or the connection): an IP, or 400."""
    text = address or ""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise BadRequest(
            "无法识别客户端地址（X-Forwarded-For）。",
            f"The client address {text[:60]!r} (from X-Forwarded-For) is not an IP address.",
        ) from None
    if len(text) > MAX_CLIENT_IP:
        raise BadRequest(
            "客户端地址（X-Forwarded-For）过长。",
            f"The client address (from X-Forwarded-For) is {len(text)} characters; "
            f"at most {MAX_CLIENT_IP} are kept.",
        )
    return text
