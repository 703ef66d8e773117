"""Requests from the frontend carry an HMAC-SHA256 signature; the backend takes no others.

The signed text is ``METHOD\\nPATH\\nTIMESTAMP\\nCLIENT_IP\\nIDEMPOTENCY_KEY\\n`` followed by the
body (an empty key when the request has none), so neither the client IP, the idempotency key
nor the body can be swapped. frontend/signed_requests.py makes the same signature (the frontend
imports nothing of the backend); the proxy tests hold them together.
"""

import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass

from backend.exceptions import BadRequest, Unauthorized

TIMESTAMP = "X-Dingpass-Timestamp"
CLIENT_IP = "X-Dingpass-Client-Ip"
IDEMPOTENCY_KEY = "X-Dingpass-Idempotency-Key"
SIGNATURE = "X-Dingpass-Signature"
# ASCII digits only: "²".isdigit() is true and int("²") fails; 16 digits is past any clock.
STAMP = re.compile(r"[0-9]{1,16}")
KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_CLIENT_IP = 45
"""Characters: the applications.client_ip column."""


@dataclass(frozen=True)
class SignedRequest:
    """What a verified signature vouches for, besides the method, path and body."""

    client_ip: str
    idempotency_key: str | None


def signature(
    secret: bytes,
    method: str,
    path: str,
    timestamp: str,
    client_ip: str,
    idempotency_key: str | None,
    body: bytes,
) -> str:
    """The hex HMAC-SHA256 of a request."""
    head = f"{method}\n{path}\n{timestamp}\n{client_ip}\n{idempotency_key or ''}\n".encode()
    return hmac.new(secret, head + body, hashlib.sha256).hexdigest()


def check(
    secrets: tuple[bytes, ...],
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    now: float,
    max_age: int,
) -> SignedRequest:
    """The client IP and idempotency key of a fresh request signed with one of ``secrets``
    (the current one, and the previous one while it rotates); else Unauthorized."""
    timestamp, client_ip = headers.get(TIMESTAMP, ""), headers.get(CLIENT_IP, "")
    key, given = headers.get(IDEMPOTENCY_KEY) or None, headers.get(SIGNATURE, "")
    if not (STAMP.fullmatch(timestamp) and given):
        raise Unauthorized("请求未签名。", "The request is not signed.")
    if abs(now - int(timestamp)) > max_age:
        raise Unauthorized("请求签名已过期。", "The request's signature has expired.")
    if not any(
        hmac.compare_digest(signature(secret, method, path, timestamp, client_ip, key, body), given)
        for secret in secrets
    ):
        raise Unauthorized("请求签名无效。", "The request's signature is not valid.")
    return SignedRequest(_usable_ip(client_ip), _usable_key(key))


def _usable_ip(client_ip: str) -> str:
    # The frontend checks the address it forwards; this keeps a bad one out of the database.
    try:
        ipaddress.ip_address(client_ip)
    except ValueError:
        raise BadRequest(
            "客户端地址无效。", f"The client address {client_ip[:60]!r} is not an IP address."
        ) from None
    if len(client_ip) > MAX_CLIENT_IP:
        raise BadRequest(
            "客户端地址过长。", f"The client address is longer than {MAX_CLIENT_IP} characters."
        )
    return client_ip


def _usable_key(key: str | None) -> str | None:
    if key is not None and not KEY.fullmatch(key):
        raise BadRequest(
            "Idempotency-Key 应为 1 到 64 个字母、数字、“_”或“-”。",
            "Idempotency-Key must be 1 to 64 letters, digits, '_' or '-'.",
        )
    return key
