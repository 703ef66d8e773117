"""Fault switches: the ways the real service misbehaves, on demand, for one action or all.

- ``throttling``: ``400 Throttling.User`` before anything is done (with ``retry_after``
  milliseconds, also the ``x-acs-retry-after`` header, which makes the SDK raise
  ``ThrottlingException``);
- ``unavailable``: ``503 ServiceUnavailable`` before anything is done;
- ``slow``: the call is done, and answered ``seconds`` later;
- ``stuck``: resources created while it is on never leave ``Pending``;
- ``lose_answer``: the call is done and recorded, then the connection is closed without an
  answer, so the SDK raises a network error.

Each fault may be limited to one action and to its next ``times`` calls.
"""

import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

FAULT_KINDS = ("throttling", "unavailable", "slow", "stuck", "lose_answer")


@dataclass
class Fault:
    """One switched-on fault."""

    kind: str
    action: str | None = None
    """Only calls of this action (``CreateVpc``); None: every action."""
    times: int | None = None
    """How many more calls it applies to; None: until cleared."""
    seconds: float = 0.0
    """``slow``: how long the answer is held back."""
    retry_after: int | None = None
    """``throttling``: milliseconds to put in ``x-acs-retry-after``; None: no header."""

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {self.kind!r} is not one of {', '.join(FAULT_KINDS)}")
        if self.times is not None and self.times < 1:
            raise ValueError(f"times must be at least 1 (got {self.times!r}); omit it for 'always'")
        if self.seconds < 0:
            raise ValueError(f"seconds must not be negative (got {self.seconds!r})")
        if self.retry_after is not None and self.retry_after < 1:
            raise ValueError(
                f"retry_after is in milliseconds, at least 1 (got {self.retry_after!r})"
            )

    def applies_to(self, action: str) -> bool:
        """Whether a call of ``action`` meets this fault."""
        return self.action is None or self.action == action

    def to_json(self) -> dict[str, Any]:
        """The fault as the control endpoint and the page show it."""
        return asdict(self)


def fault_from_json(data: Mapping[str, Any]) -> Fault:
    """A fault from ``POST /_sandbox/faults``'s body; ValueError says what is wrong."""
    unknown = set(data) - {"kind", "action", "times", "seconds", "retry_after"}
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
    if not isinstance(data.get("kind"), str):
        raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}")
    action, times, retry_after = data.get("action"), data.get("times"), data.get("retry_after")
    seconds = data.get("seconds", 0.0)
    if action is not None and not isinstance(action, str):
        raise ValueError(f"action must be an action's name (got {action!r})")
    for name, value in (("times", times), ("retry_after", retry_after)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ValueError(f"{name} must be a whole number (got {value!r})")
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
        raise ValueError(f"seconds must be a number (got {seconds!r})")
    return Fault(data["kind"], action, times, float(seconds), retry_after)


class Faults:
    """The faults switched on, consumed one call at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def set(
        self,
        kind: str,
        action: str | None = None,
        times: int | None = None,
        seconds: float = 0.0,
        retry_after: int | None = None,
    ) -> Fault:
        """Switch a fault on; it replaces one of the same kind for the same action."""
        return self.add(Fault(kind, action, times, seconds, retry_after))

    def add(self, fault: Fault) -> Fault:
        """Switch ``fault`` on, replacing one of its kind for its action."""
        with self._lock:
            self._faults = [
                f for f in self._faults if (f.kind, f.action) != (fault.kind, fault.action)
            ]
            self._faults.append(fault)
        return fault

    def take(self, kind: str, action: str) -> Fault | None:
        """The fault of ``kind`` a call of ``action`` meets, one of its uses spent; or None."""
        with self._lock:
            matching = [f for f in self._faults if f.kind == kind and f.applies_to(action)]
            if not matching:
                return None
            fault = min(matching, key=lambda f: f.action is None)  # the action's own first
            if fault.times is not None:
                fault.times -= 1
                if fault.times == 0:
                    self._faults.remove(fault)
            return fault

    def clear(self, kind: str | None = None) -> None:
        """Switch every fault off, or those of ``kind``."""
        with self._lock:
            self._faults = [f for f in self._faults if kind is not None and f.kind != kind]

    def active(self) -> list[Fault]:
        """The faults on now."""
        with self._lock:
            return list(self._faults)
