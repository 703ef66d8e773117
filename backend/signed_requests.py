"""Requests from the frontend carry an HMAC-SHA256 signature; the backend takes no others.

The signed text is ``METHOD\\nPATH\\nTIMESTAMP\\nCLIENT_IP\\n`` followed by the body, so
neither the client IP nor the body can be swapped. frontend/signed_requests.py makes the same
signature (the frontend imports nothing of the backend); the proxy tests hold them together.
"""

import hashlib
import hmac

from backend.exceptions import Unauthorized

TIMESTAMP = "X-Dingpass-Timestamp"
CLIENT_IP = "X-Dingpass-Client-Ip"
SIGNATURE = "X-Dingpass-Signature"


def signature(
    secret: bytes, method: str, path: str, timestamp: str, client_ip: str, body: bytes
) -> str:
    """The hex HMAC-SHA256 of a request."""
    head = f"{method}\n{path}\n{timestamp}\n{client_ip}\n".encode()
    return hmac.new(secret, head + body, hashlib.sha256).hexdigest()


def check(
    secret: bytes,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    now: float,
    max_age: int,
) -> str:
    """The client IP of a correctly signed, fresh request; else Unauthorized."""
    timestamp, client_ip = headers.get(TIMESTAMP, ""), headers.get(CLIENT_IP, "")
    given = headers.get(SIGNATURE, "")
    if not (timestamp.isdigit() and given):
        raise Unauthorized("请求未签名。", "The request is not signed.")
    if abs(now - int(timestamp)) > max_age:
        raise Unauthorized("请求签名已过期。", "The request's signature has expired.")
    expected = signature(secret, method, path, timestamp, client_ip, body)
    if not hmac.compare_digest(expected, given):
        raise Unauthorized("请求签名无效。", "The request's signature is not valid.")
    return client_ip
