"""Sign requests to the backend: HMAC-SHA256 as backend/signed_requests.py checks it.

The signed text is ``METHOD\\nPATH\\nTIMESTAMP\\nCLIENT_IP\\nIDEMPOTENCY_KEY\\n`` followed by the
body (an empty key when the request has none). Written again here, not imported: the frontend
imports nothing of the backend. The proxy tests send requests signed here to the real backend,
so the two cannot drift.
"""

import hashlib
import hmac

TIMESTAMP = "X-Dingpass-Timestamp"
CLIENT_IP = "X-Dingpass-Client-Ip"
IDEMPOTENCY_KEY = "X-Dingpass-Idempotency-Key"
SIGNATURE = "X-Dingpass-Signature"


def signed_headers(
    secret: bytes,
    method: str,
    path: str,
    timestamp: int,
    client_ip: str,
    idempotency_key: str | None,
    body: bytes,
) -> dict[str, str]:
    """The headers that make a backend request acceptable."""
    key = idempotency_key or ""
    head = f"{method}\n{path}\n{timestamp}\n{client_ip}\n{key}\n".encode()
    mac = hmac.new(secret, head + body, hashlib.sha256).hexdigest()
    headers = {TIMESTAMP: str(timestamp), CLIENT_IP: client_ip, SIGNATURE: mac}
    if key:
        headers[IDEMPOTENCY_KEY] = key
    return headers
