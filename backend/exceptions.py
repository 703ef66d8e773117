"""Errors of the backend, each with a message that tells the user what to do.

DingpassError (Exception)
 +-- ConfigError (ValueError)          a setting is missing or unusable
 +-- IllegalTransition (ValueError)    a status move its state machine does not allow (a bug)
 +-- DowngradeRefused (RuntimeError)   the data needs a newer schema than the one asked for
 +-- DingTalkError                     DingTalk did not do what was asked
 |    +-- DingTalkUnavailable          network failure, timeout, 5xx: try again later
 |    +-- DingTalkRateLimited          Forbidden.AccessDenied.QpsLimit*: back off, try again
 |    +-- DingTalkTokenInvalid         InvalidAuthentication: refresh the token once
 |    +-- DingTalkRejected             the request itself is wrong (secret, process code, form)
 +-- ApiError                          answered to an HTTP caller with its status
      +-- BadRequest             400   the body is not what the endpoint reads
      +-- Unauthorized           401   not signed by the frontend, or signed too long ago
      +-- NotFound               404
      +-- Conflict               409   an idempotency key reused for something else
      +-- ValidationError        422   per-field messages in Chinese and English
      +-- RateLimited            429   with the seconds to wait
"""

Message = dict[str, str]
"""A message for people, by language: {"zh": ..., "en": ...}."""


class DingpassError(Exception):
    """Base of every error the backend raises on purpose."""


class ConfigError(DingpassError, ValueError):
    """A setting is missing or has a value that cannot be used."""


class RetryCannotHelp(DingpassError):
    """Raised by a job's handler when running it again cannot succeed until a person changes a
    setting (a robot refusing a wrong secret): the job fails at once, with this message."""


class IllegalTransition(DingpassError, ValueError):
    """A record was asked to move between two statuses its state machine does not link."""


class DowngradeRefused(DingpassError, RuntimeError):
    """The database holds what an older schema cannot: the downgrade would lose it."""


class DingTalkError(DingpassError):
    """DingTalk did not do what was asked."""

    def __init__(self, message: str, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code, self.status = code, status


class DingTalkUnavailable(DingTalkError):
    """DingTalk could not be reached or failed on its side; try again later.

    ``in_doubt``: the request may have reached DingTalk and done its work (a read timeout, a
    5xx), as opposed to having never left (no connection): a start in doubt may have opened
    an instance.
    """

    def __init__(
        self,
        message: str,
        code: str | None = None,
        status: int | None = None,
        *,
        in_doubt: bool = True,
    ) -> None:
        super().__init__(message, code, status)
        self.in_doubt = in_doubt


class DingTalkRateLimited(DingTalkError):
    """DingTalk's rate limit was hit; back off."""


class DingTalkTokenInvalid(DingTalkError):
    """The access token was refused; get a new one."""


class DingTalkRejected(DingTalkError):
    """DingTalk refused the request as wrong: fix the configuration or the form."""


class ApiError(DingpassError):
    """An error answered to an HTTP caller as JSON with its status code."""

    status = 400
    code = "bad_request"

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.message: Message = {"zh": zh, "en": en}

    def body(self) -> dict[str, object]:
        """The JSON answer."""
        return {"error": self.code, "message": self.message}


class BadRequest(ApiError):
    """The request body is not what the endpoint reads."""


class Unauthorized(ApiError):
    """The request was not signed by the frontend, or was signed too long ago."""

    status, code = 401, "unauthorized"


class NotFound(ApiError):
    """Nothing is at that address."""

    status, code = 404, "not_found"


class Conflict(ApiError):
    """The request contradicts one made before under the same key."""

    status, code = 409, "conflict"


class ValidationError(ApiError):
    """Some fields are wrong; each has its own message."""

    status, code = 422, "validation_failed"

    def __init__(self, fields: dict[str, Message]) -> None:
        super().__init__("请检查标出的字段。", "Please check the marked fields.")
        self.fields = fields

    def body(self) -> dict[str, object]:
        """The JSON answer, with a message per field."""
        return {**super().body(), "fields": self.fields}


class RateLimited(ApiError):
    """Too many applications from one address or email in the window."""

    status, code = 429, "rate_limited"

    def __init__(self, retry_after: int) -> None:
        minutes = max(1, round(retry_after / 60))
        super().__init__(
            f"提交次数过多，请 {minutes} 分钟后再试。",
            f"Too many applications; try again in {minutes} minutes.",
        )
        self.retry_after = retry_after
