"""A requests adapter that connects to an address already checked, with TLS for the host name.

Its own module, imported by backend.changes.callbacks when a callback is sent: requests and
urllib3 cost some 25 ms of start-up, and most of the functions' runs send no callback.
"""

from typing import Any

import requests
from requests.adapters import HTTPAdapter


class PinnedAdapter(HTTPAdapter):
    """Connects to the address in the URL, but checks TLS (SNI, certificate) for ``host``."""

    def __init__(self, host: str) -> None:
        super().__init__(max_retries=0)
        self.host = host

    def build_connection_pool_key_attributes(
        self,
        request: requests.PreparedRequest,
        verify: bool | str,
        cert: str | tuple[str, str] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """requests' pool settings, with the host name for TLS (urllib3's custom SNI)."""
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        pool_kwargs |= {"server_hostname": self.host, "assert_hostname": self.host}
        return host_params, pool_kwargs
