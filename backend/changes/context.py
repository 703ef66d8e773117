"""What the change steps' jobs use: the plugins, the cloud's clients, and how long to wait."""

from dataclasses import dataclass, replace
from datetime import timedelta

from backend.cloud.clients import CloudClients
from backend.cloud.credentials import CloudCredentials
from backend.cloud.plugins.base import Plugins


@dataclass(frozen=True)
class ChangeContext:
    """The plugins and the clients they call, with the pace of readiness checks.

    A resource is checked ``first_check`` after it was created, then at doubling intervals
    up to ``check_cap``; one still not ready after ``ready_timeout`` fails its step.
    """

    plugins: Plugins
    cloud: CloudClients
    ready_timeout: timedelta = timedelta(minutes=30)
    first_check: timedelta = timedelta(seconds=1)
    check_cap: timedelta = timedelta(seconds=30)

    def with_credentials(self, credentials: CloudCredentials | None) -> "ChangeContext":
        """This context calling the cloud with ``credentials`` (None: as configured)."""
        if credentials is None:
            return self
        return replace(self, cloud=self.cloud.with_credentials(credentials))

    def check_in(self, checks: int) -> timedelta:
        """How long to wait before the readiness check after ``checks`` earlier ones."""
        # The exponent is capped first: 2**47 seconds is past what a timedelta holds.
        later: timedelta = self.first_check * (2 ** min(checks, 20))
        return min(self.check_cap, later)
