"""The access key the resource plugins sign their cloud calls with."""

from collections.abc import Mapping
from dataclasses import dataclass, field

FC_HEADERS = ("x-fc-access-key-id", "x-fc-access-key-secret", "x-fc-security-token")
"""Function Compute's per-invocation headers: the function role's temporary credentials."""


@dataclass(frozen=True)
class CloudCredentials:
    """An access key (with its STS token when it is temporary); its repr hides the secrets."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_fc_headers(cls, headers: Mapping[str, str]) -> "CloudCredentials | None":
        """The credentials Function Compute sent with this invocation, or None if it sent none.

        FC sends them only when the function has a role; header names are matched in any case.
        """
        lowered = {name.lower(): value for name, value in headers.items()}
        key_id, secret, token = (lowered.get(name, "").strip() for name in FC_HEADERS)
        if not key_id or not secret:
            return None
        return cls(key_id, secret, token or None)
