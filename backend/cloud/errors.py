"""Our errors for what the Alibaba Cloud SDKs raise, sorted by whether trying again can help.

DingpassError
 +-- CloudError                 a cloud call did not do what was asked
      +-- CloudRetryable        throttled, the cloud's own failure (5xx), a parent resource not
      |                         ready yet, a token still in flight, no answer: try again later
      +-- CloudRefused          the cloud said no for good (also RetryCannotHelp): the step
           |                    fails with the cloud's code and message
           +-- CloudNotFound    what the call names does not exist

The SDKs (tea-openapi 0.4) raise ``ClientException`` (4xx), ``ServerException`` (5xx) and
``ThrottlingException`` (an ``x-acs-retry-after`` header), all darabonba ``ResponseException``s.
When no answer came, or one that is not JSON, or the credential chain found no key, they raise
``darabonba.exceptions.UnretryableException`` and keep the cause in ``inner_exception``: a
``RetryError`` carrying only the text of the requests error (connection refused, connection
dropped, read timeout), a ``RuntimeError`` about JSON, or a ``CredentialException``.
"""

import re
from collections.abc import Iterator
from contextlib import contextmanager

from backend.exceptions import DingpassError, RetryCannotHelp

RETRYABLE_CODES = frozenset(
    {
        "ServiceUnavailable",
        "InternalError",
        "UnknownError",
        "OperationConflict",  # a concurrent operation on the same resource
        "TaskConflict",
        "LastTokenProcessing",  # the first call with this ClientToken is still running
        "OperationFailed.IdempotentTokenProcessing",
        "IncorrectVpcStatus",  # the VPC is not Available yet
        "IncorrectVSwitchStatus",  # the vSwitch is not Available yet, or a sibling is changing
        "IncorrectInstanceStatus.Initializing",
        "InvalidSecurityToken.Expired",  # the next run signs with the next invocation's token
    }
)
"""Codes that name a passing state of the cloud, not a mistake in the request."""

NOT_JSON = "Failed to parse the value as json format"
"""The SDK's words for an answer that is not JSON: a gateway's error page."""

NETWORK_REASONS = (
    ("Connection refused", "connection refused"),
    ("timed out", "timed out"),
    ("Remote end closed connection", "connection dropped before an answer"),
    ("Connection aborted", "connection dropped before an answer"),
    ("Connection reset", "connection reset"),
    ("Name or service not known", "host name not found"),
    ("Temporary failure in name resolution", "host name not found"),
)
"""Phrases of the requests/urllib3 error text the SDK keeps, and what they mean for a person."""

HOST = re.compile(r"host='([^']+)', port=(\d+)")


class CloudError(DingpassError):
    """A cloud call did not do what was asked; ``code`` and ``message`` are the cloud's."""

    verb = "failed"

    def __init__(
        self,
        action: str,
        code: str | None,
        message: str,
        request_id: str | None = None,
        status: int | None = None,
    ) -> None:
        self.action, self.code, self.message = action, code, message
        self.request_id, self.status = request_id, status
        self.resource_id: str | None = None
        """Set by a plugin whose start made its resource before this failure: it exists."""
        super().__init__(self._text())

    def _text(self) -> str:
        said = f"{self.code}: {self.message}" if self.code else self.message
        asked = f" (request id {self.request_id})" if self.request_id else ""
        return f"{self.action} {self.verb}: {said}{asked}"


class CloudRetryable(CloudError):
    """The cloud cannot do it now (throttled, failing, a parent not ready, no answer): retry."""

    verb = "failed for now"


class CloudRefused(CloudError, RetryCannotHelp):
    """The cloud refused the request as it stands: running it again cannot help."""

    verb = "refused"


class CloudNotFound(CloudRefused):
    """What the call names (a VPC, an image, a user, ...) does not exist."""


def is_retryable(code: str | None, status: int | None) -> bool:
    """Whether an error answer with this code and HTTP status may pass if tried again."""
    if status is not None and (status >= 500 or status == 429):
        return True
    if code is None:
        return False
    return code.startswith("Throttling") or code.endswith(".Throttling") or code in RETRYABLE_CODES


def is_not_found(code: str | None) -> bool:
    """Whether a refusal's code says that something it names does not exist."""
    return code is not None and ("NotFound" in code or code.startswith("EntityNotExist"))


@contextmanager
def translated(action: str) -> Iterator[None]:
    """Run SDK calls for ``action``; what the SDK raises comes out as a CloudError.

    Exceptions that are not the SDK's (a bug of ours) pass through unchanged.
    """
    try:
        yield
    except CloudError:
        raise
    except Exception as error:
        ours = from_sdk(action, error)
        if ours is None:
            raise
        raise ours from error


def from_sdk(action: str, error: BaseException) -> CloudError | None:
    """Our error for what an SDK call for ``action`` raised, or None if the SDK did not raise it."""
    from darabonba.exceptions import ResponseException
    from Tea.exceptions import UnretryableException

    if isinstance(error, ResponseException):
        return _from_answer(action, error)
    if isinstance(error, UnretryableException):
        return _from_no_answer(action, error.inner_exception)
    if isinstance(error, OSError):  # requests' errors are OSErrors, should one escape the SDK
        return CloudRetryable(action, None, _unreachable(str(error)))
    return None


def _from_answer(action: str, error: BaseException) -> CloudError:
    from alibabacloud_tea_openapi.exceptions import ThrottlingException

    data = getattr(error, "data", None)
    body = data if isinstance(data, dict) else {}
    code = body.get("Code") or _given(getattr(error, "code", None))
    # The SDK's own message wraps the cloud's in "code: 400, ... request id: ..."
    message = body.get("Message") or str(getattr(error, "message", "") or error)
    request_id = body.get("RequestId") or _given(getattr(error, "request_id", None))
    status = getattr(error, "status_code", None)
    if isinstance(error, ThrottlingException) or is_retryable(code, status):
        kind: type[CloudError] = CloudRetryable
    else:
        kind = CloudNotFound if is_not_found(code) else CloudRefused
    return kind(action, code, message, request_id, status)


def _from_no_answer(action: str, inner: BaseException | None) -> CloudError:
    from alibabacloud_credentials.exceptions import CredentialException
    from darabonba.exceptions import RetryError
    from Tea.exceptions import RetryError as TeaRetryError

    if isinstance(inner, (RetryError, TeaRetryError, OSError)):
        return CloudRetryable(action, None, _unreachable(str(getattr(inner, "message", inner))))
    if isinstance(inner, RuntimeError) and NOT_JSON in str(inner):
        return CloudRetryable(
            action, None, f"the cloud API answered with something other than JSON: {inner}"[:300]
        )
    if isinstance(inner, CredentialException):
        return CloudRefused(
            action,
            None,
            "no cloud credentials: give the function a role, or set CLOUD_ACCESS_KEY_ID and "
            f"CLOUD_ACCESS_KEY_SECRET ({inner})",
        )
    return CloudRefused(action, None, f"the cloud SDK failed: {inner!r}"[:300])


def _unreachable(text: str) -> str:
    """What a person reads for the SDK's text of a failed connection."""
    found = HOST.search(text)
    where = f" at {found[1]}:{found[2]}" if found else ""
    reason = next((said for sign, said in NETWORK_REASONS if sign in text), text[:200])
    return f"no answer from the cloud API{where}: {reason}"


def _given(value: object) -> str | None:
    # The SDK formats absent fields into the string "None".
    return None if value is None or str(value) in ("", "None") else str(value)
