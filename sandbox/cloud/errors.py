"""Refusals in Alibaba Cloud's words, and the JSON body every error answer carries.

Codes and messages are the documented ones (see /work/shared/aliyun-openapi.md and the
products' error tables); where the documentation names no code, the choice is written down
next to the refusal that uses it.
"""

from collections.abc import Mapping
from typing import Any

RECOMMEND = "https://api.aliyun.com/troubleshoot?q={code}&product={product}&requestId={request_id}"


class ApiError(Exception):
    """An API call refused: the HTTP status, the error code and its message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def body(self, request_id: str, host_id: str, product: str) -> dict[str, Any]:
        """The error body: RequestId, HostId, Code, Message and a Recommend link."""
        return {
            "RequestId": request_id,
            "HostId": host_id,
            "Code": self.code,
            "Message": self.message,
            "Recommend": RECOMMEND.format(code=self.code, product=product, request_id=request_id),
        }


def missing(name: str) -> ApiError:
    """A required parameter absent or empty."""
    return ApiError(
        400,
        "MissingParameter",
        f'The input parameter "{name}" that is mandatory for processing this request '
        "is not supplied.",
    )


def invalid(name: str, value: object, why: str = "") -> ApiError:
    """A parameter present but unusable; ``why`` says what it must be."""
    detail = f" {why}" if why else ""
    return ApiError(
        400,
        "InvalidParameter",
        f'The specified parameter "{name}" ({value!r}) is not valid.{detail}',
    )


def dry_run(code: str = "DryRunOperation") -> ApiError:
    """What a DryRun call answers when every check has passed."""
    return ApiError(400, code, "Request validation has been passed with DryRun flag set.")
