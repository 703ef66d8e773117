"""What the fulfillment jobs need, built once and handed to them."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from backend.approvals.opener import InstanceOpener
from backend.catalogue import Catalogue
from backend.mail.smtp import SmtpSender
from backend.storage.database import Database
from license import Issuer


@dataclass(frozen=True)
class Fulfillment:
    """The fulfillment jobs' dependencies."""

    database: Database
    catalogue: Catalogue
    issuer: Callable[[], Issuer]  # made on first use: only the runner needs the signing key
    sender: SmtpSender
    mail_from: str
    opener: InstanceOpener | None
    clock: Callable[[], datetime]
    kick: Callable[[], None] = lambda: None
