"""The real clock. What needs the time takes a clock, so tests can set it; this is the default."""

from datetime import datetime, timezone


def utc_now() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(timezone.utc)
