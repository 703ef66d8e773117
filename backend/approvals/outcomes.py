"""What a delivery of an approval event did: recorded with the event, and logged."""

from backend.compat import StrEnum


class Outcome(StrEnum):
    """What a delivery did; recorded with the event and logged."""

    MOVED = "moved"
    REQUESTED = "requested"  # an employee's request agreed: the job that makes its change
    DUPLICATE = "duplicate"
    UNKNOWN_INSTANCE = "unknown_instance"  # held until an application adopts the instance
    NO_DECISION = "no_decision"
    NOT_PENDING = "not_pending"
    NOT_OURS = "not_ours"  # another form's instance, or one no application of ours started
    DUPLICATE_INSTANCE = "duplicate_instance"  # ours, but its application has another: for a person
