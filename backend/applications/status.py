"""Where an application stands, and the one table of the moves it may make."""

from backend.compat import StrEnum
from backend.exceptions import IllegalTransition


class ApplicationStatus(StrEnum):
    """An application's status; stored as its value, shown to the applicant by the page."""

    SUBMITTED = "submitted"  # stored; its DingTalk approval is not open yet
    PENDING = "pending"  # waiting for the approver
    APPROVED = "approved"
    REFUSED = "refused"
    TERMINATED = "terminated"  # withdrawn in DingTalk before a decision
    ISSUED = "issued"  # the license is signed
    DELIVERED = "delivered"  # the mail server accepted the license mail


TRANSITIONS: dict[ApplicationStatus, frozenset[ApplicationStatus]] = {
    # To approved at once: an activation code approved it (backend.codes.redeem), no DingTalk
    # approval is asked for.
    ApplicationStatus.SUBMITTED: frozenset({ApplicationStatus.PENDING, ApplicationStatus.APPROVED}),
    ApplicationStatus.PENDING: frozenset(
        {ApplicationStatus.APPROVED, ApplicationStatus.REFUSED, ApplicationStatus.TERMINATED}
    ),
    ApplicationStatus.APPROVED: frozenset({ApplicationStatus.ISSUED}),
    ApplicationStatus.ISSUED: frozenset({ApplicationStatus.DELIVERED}),
    ApplicationStatus.REFUSED: frozenset(),
    ApplicationStatus.TERMINATED: frozenset(),
    ApplicationStatus.DELIVERED: frozenset(),
}
"""Every move an application may make; anything else is a bug, and raises."""


def check_move(before: ApplicationStatus, after: ApplicationStatus) -> None:
    """Raise IllegalTransition unless ``before -> after`` is in the table."""
    if after not in TRANSITIONS[before]:
        allowed = ", ".join(sorted(TRANSITIONS[before])) or "nothing: it is final"
        raise IllegalTransition(
            f"an application cannot move {before} -> {after}; from {before} it may move to "
            f"{allowed}"
        )
