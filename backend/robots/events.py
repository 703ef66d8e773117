"""The events a robot can be told of."""

from backend.compat import StrEnum


class RobotEvent(StrEnum):
    """Something a group may want to hear about; robots subscribe to these by name."""

    AWAITING_APPROVAL = "awaiting_approval"  # needs action: mentions the configured people
    LICENSE_DELIVERED = "license_delivered"
    REFUSAL = "refusal"  # refused or withdrawn in DingTalk
    JOB_FAILED = "job_failed"  # a job gave up after its attempts
    LICENSE_EXPIRING = "license_expiring"  # a license ends in 30, 7 or 1 days (scheduled check)
    APPROVAL_PENDING = "approval_pending"  # still undecided after PENDING_REMINDER_HOURS
    DAILY_DIGEST = "daily_digest"  # failed and overdue jobs, once a day

    @property
    def needs_action(self) -> bool:
        """Whether the message @-mentions the robot's people."""
        return self in (RobotEvent.AWAITING_APPROVAL, RobotEvent.APPROVAL_PENDING)
