"""What the plugins share: value patterns, reading SDK answers, and inputs over parameters."""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from backend.cloud.errors import CloudNotFound, CloudRefused, CloudRetryable, translated

OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"


def cidr_pattern(low: int, high: int) -> str:
    """A pattern for an IPv4 CIDR block whose mask is ``low`` to ``high`` bits."""
    masks = "|".join(str(bits) for bits in range(high, low - 1, -1))
    return rf"{OCTET}(\.{OCTET}){{3}}/({masks})"


ECS_NAME = r"[A-Za-z\u4e00-\u9fa5][A-Za-z0-9\u4e00-\u9fa5:_.-]*"
"""An ECS name (instance, security group, key pair): ECS's rule, 2-128 characters, starting
with a letter or a Chinese character, then those, digits, ':', '_', '.' or '-' (no space)."""

NAME = r"(?!https?://)[^\x00-\x1f\x7f]+"
"""A cloud resource's name or description: text without control characters that does not
start like a URL."""


def answer(response: Any) -> dict[str, Any]:
    """An SDK response's body as the cloud sent it (its JSON field names)."""
    body = response.body.to_map() if response.body is not None else None
    return body if isinstance(body, dict) else {}


def given(name: str, action: str, spec: Mapping[str, Any], inputs: Mapping[str, Any]) -> str:
    """``name`` from an earlier step's results, else from the spec; refused if neither has it."""
    value = inputs.get(name) or spec.get(name)
    if not value:
        raise CloudRefused(
            action,
            "MissingParameter",
            f"{name} is needed: make this step follow the step that creates it, "
            f"or give {name} as a parameter",
        )
    return str(value)


def token_for(purpose: str, resource_id: str) -> str:
    """A ClientToken for an operation on an existing resource (64 ASCII characters at most)."""
    return f"{purpose}-{resource_id}"[:64]


@contextmanager
def deleting(action: str, not_found: frozenset[str]) -> Iterator[None]:
    """Run a delete call for ``action``: a resource that is gone already counts as deleted.

    A resource still in use (DependencyViolation*) is asked again: in a rollback, what uses it
    was deleted just before and may still be being released.
    """
    try:
        with translated(action):
            yield
    except CloudNotFound as gone:
        if gone.code not in not_found:
            raise
    except CloudRefused as refused:
        if not (refused.code or "").startswith("DependencyViolation"):
            raise
        raise _retryable(refused, "something still uses it; it may be being deleted") from refused


@contextmanager
def describing(action: str, not_found: frozenset[str]) -> Iterator[None]:
    """Run a readiness check's call for ``action``: a resource it does not know is asked again.

    The cloud's lists are eventually consistent, so a resource just created may not be listed
    yet; if it stays unknown, the job's attempts run out and the step fails with this message.
    """
    try:
        with translated(action):
            yield
    except CloudNotFound as gone:
        if gone.code not in not_found:
            raise
        raise _retryable(gone, "a resource just created may not be listed yet") from gone


def _retryable(error: CloudRefused, why: str) -> CloudRetryable:
    return CloudRetryable(
        error.action, error.code, f"{error.message} ({why})", error.request_id, error.status
    )
