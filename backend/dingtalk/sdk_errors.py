"""Our DingTalkError for the one exception class the official SDK raises (TeaException)."""

from typing import Any

from backend.exceptions import (
    DingTalkError,
    DingTalkRateLimited,
    DingTalkRejected,
    DingTalkTokenInvalid,
    DingTalkUnavailable,
)

NOT_CONNECTED = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "ConnectTimeoutError",
)
"""What urllib3 says, inside the SDK's RetryError text, when no connection was ever made."""


NOT_JSON = "Failed to parse the value as json format"
"""What the SDK says when an answer is not JSON: a gateway's error page, or DingTalk's page
for an IP it throttles. The SDK keeps neither the HTTP status nor a code."""


def _never_sent(message: str) -> bool:
    # The SDK gives no type for this, only the text of the error it retried on.
    return any(sign in message for sign in NOT_CONNECTED)


def from_sdk(error: Any) -> DingTalkError:
    """Our error for the SDK's TeaException, by its code and HTTP status."""
    code = getattr(error, "code", None)
    data = getattr(error, "data", None) or {}
    status = data.get("statusCode") if isinstance(data, dict) else None
    message = f"DingTalk: {getattr(error, 'message', error)}"
    if code is None and NOT_JSON in message:
        return DingTalkUnavailable(
            "DingTalk answered with a web page instead of JSON (a gateway's error page, or "
            "DingTalk throttling this server's IP address): try again in a few minutes"
        )
    if code is None or (isinstance(status, int) and status >= 500):
        return DingTalkUnavailable(message, code, status, in_doubt=not _never_sent(message))
    if str(code).startswith("Forbidden.AccessDenied.QpsLimit"):
        return DingTalkRateLimited(message, code, status)
    if code == "InvalidAuthentication":
        return DingTalkTokenInvalid(message, code, status)
    return DingTalkRejected(message, code, status)
