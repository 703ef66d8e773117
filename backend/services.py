"""What job handlers need, built once per runner and handed to each of them."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from backend.approvals.opener import InstanceOpener
from backend.catalogue import Catalogue
from backend.changes.approval import ChangeApprovals
from backend.changes.context import ChangeContext
from backend.mail.smtp import SmtpSender
from backend.robots.context import RobotContext
from backend.storage.database import Database
from license import Issuer


@dataclass(frozen=True)
class Services:
    """The outside world as the job handlers see it."""

    database: Database
    catalogue: Catalogue
    issuer: Callable[[], Issuer]  # made on first use: only the runner needs the signing key
    sender: SmtpSender
    mail_from: str
    opener: InstanceOpener | None  # None until DingTalk is configured
    clock: Callable[[], datetime]
    kick: Callable[[], None] = lambda: None  # wakes a runner for work just committed
    robots: RobotContext = RobotContext()  # no robots unless ROBOTS_FILE names some
    changes: ChangeContext | None = None  # the resource plugins and the cloud they call
    approvals: ChangeApprovals | None = None  # None until DingTalk is configured
    callbacks_may_reach_private: bool = False  # change callbacks to loopback/private addresses
