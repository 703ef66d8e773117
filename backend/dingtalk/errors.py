"""What can go wrong talking to DingTalk, from the SDK's one exception class.

DingTalkError (DingpassError)
 +-- DingTalkUnavailable    network failure, timeout, 5xx: try again later
 +-- DingTalkRateLimited    Forbidden.AccessDenied.QpsLimit*: back off and try again
 +-- DingTalkTokenInvalid   InvalidAuthentication: refresh the token once
 +-- DingTalkRejected       the request itself is wrong (bad secret, process code, form)
"""

from typing import Any

from backend.exceptions import DingpassError


class DingTalkError(DingpassError):
    """DingTalk did not do what was asked."""

    def __init__(self, message: str, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code, self.status = code, status


class DingTalkUnavailable(DingTalkError):
    """DingTalk could not be reached or failed on its side; try again later."""


class DingTalkRateLimited(DingTalkError):
    """DingTalk's rate limit was hit; back off."""


class DingTalkTokenInvalid(DingTalkError):
    """The access token was refused; get a new one."""


class DingTalkRejected(DingTalkError):
    """DingTalk refused the request as wrong: fix the configuration or the form."""


def from_sdk(error: Any) -> DingTalkError:
    """Our error for the SDK's TeaException."""
    code = getattr(error, "code", None)
    data = getattr(error, "data", None) or {}
    status = data.get("statusCode") if isinstance(data, dict) else None
    message = f"DingTalk: {getattr(error, 'message', error)}"
    if code is None or (isinstance(status, int) and status >= 500):
        return DingTalkUnavailable(message, code, status)
    if str(code).startswith("Forbidden.AccessDenied.QpsLimit"):
        return DingTalkRateLimited(message, code, status)
    if code == "InvalidAuthentication":
        return DingTalkTokenInvalid(message, code, status)
    return DingTalkRejected(message, code, status)
