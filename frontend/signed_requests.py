"""Sign requests to the backend: HMAC-SHA256 as backend/signed_requests.py checks it.

Written again here, not imported: the frontend imports nothing of the backend. The
proxy tests send requests signed here to the real backend, so the two cannot drift.
"""

import hashlib
import hmac

TIMESTAMP = "X-Dingpass-Timestamp"
CLIENT_IP = "X-Dingpass-Client-Ip"
SIGNATURE = "X-Dingpass-Signature"


def signed_headers(
    secret: bytes, method: str, path: str, timestamp: int, client_ip: str, body: bytes
) -> dict[str, str]:
    """The headers that make a backend request acceptable."""
    head = f"{method}\n{path}\n{timestamp}\n{client_ip}\n".encode()
    mac = hmac.new(secret, head + body, hashlib.sha256).hexdigest()
    return {TIMESTAMP: str(timestamp), CLIENT_IP: client_ip, SIGNATURE: mac}
