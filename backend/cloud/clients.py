"""The official SDK clients for VPC, ECS and RAM, each built on first use.

Each SDK is imported in the method that builds its client: a Function Compute instance that
never runs a plugin never pays for it (cold start, and 128 MiB of memory).
"""

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from backend.cloud.credentials import CloudCredentials

if TYPE_CHECKING:
    from backend.config import Config

READ_TIMEOUT = 10.0
"""Seconds to wait for a cloud API's answer."""
CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a connection to a cloud API."""


class CloudClients:
    """The SDK clients of one region, endpoint and access key, cached on this object.

    ``endpoint`` is one URL for every API (``http://127.0.0.1:8004``, the sandbox), or None
    for each SDK's own endpoint of ``region``. ``credentials`` None: the standard Alibaba Cloud
    credential chain (ALIBABA_CLOUD_* variables, profile files).
    """

    __slots__ = (
        "_cache",
        "_connect_timeout",
        "_credentials",
        "_endpoint",
        "_read_timeout",
        "_region",
    )

    def __init__(
        self,
        region: str,
        endpoint: str | None = None,
        credentials: CloudCredentials | None = None,
        *,
        read_timeout: float = READ_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self._region, self._endpoint, self._credentials = region, endpoint, credentials
        self._read_timeout, self._connect_timeout = read_timeout, connect_timeout
        self._cache: dict[str, Any] = {}

    def __repr__(self) -> str:
        # Never the credentials: a repr ends up in logs and tracebacks.
        return f"CloudClients(region={self._region!r}, endpoint={self._endpoint!r})"

    @property
    def region(self) -> str:
        """The region resources are created in (RegionId of every call)."""
        return self._region

    @property
    def endpoint(self) -> str | None:
        """The one API address in use, or None for the SDKs' own."""
        return self._endpoint

    def with_credentials(self, credentials: CloudCredentials | None) -> "CloudClients":
        """A copy that signs with ``credentials`` (an invocation's own), with fresh clients."""
        return CloudClients(
            self._region,
            self._endpoint,
            credentials,
            read_timeout=self._read_timeout,
            connect_timeout=self._connect_timeout,
        )

    def vpc(self) -> Any:
        """The VPC API client (alibabacloud_vpc20160428)."""
        if "vpc" not in self._cache:
            from alibabacloud_vpc20160428.client import Client

            self._cache["vpc"] = Client(self._sdk_config())
        return self._cache["vpc"]

    def ecs(self) -> Any:
        """The ECS API client (alibabacloud_ecs20140526)."""
        if "ecs" not in self._cache:
            from alibabacloud_ecs20140526.client import Client

            self._cache["ecs"] = Client(self._sdk_config())
        return self._cache["ecs"]

    def ram(self) -> Any:
        """The RAM API client (alibabacloud_ram20150501)."""
        if "ram" not in self._cache:
            from alibabacloud_ram20150501.client import Client

            self._cache["ram"] = Client(self._sdk_config())
        return self._cache["ram"]

    def _sdk_config(self) -> Any:
        from alibabacloud_tea_openapi.utils_models import Config

        # No retry_options: the SDK then makes one attempt, and our jobs decide on retries.
        config = Config(
            region_id=self._region,
            read_timeout=round(self._read_timeout * 1000),
            connect_timeout=round(self._connect_timeout * 1000),
            **_signing(self._credentials),
        )
        if self._endpoint:
            address = urlsplit(self._endpoint)
            # The SDK sends `endpoint` as the Host header: host[:port] only, no scheme.
            config.endpoint, config.protocol = address.netloc, address.scheme
        return config


def _signing(credentials: CloudCredentials | None) -> dict[str, Any]:
    """The SDK Config fields that sign calls: the given key, or the standard chain."""
    if credentials is None:
        from alibabacloud_credentials.client import Client as CredentialChain

        return {"credential": CredentialChain()}
    return {
        "access_key_id": credentials.access_key_id,
        "access_key_secret": credentials.access_key_secret,
        "security_token": credentials.security_token,
    }


def cloud_clients(config: "Config") -> CloudClients:
    """The clients the configuration asks for (its access key, else the standard chain)."""
    credentials = None
    if config.cloud_access_key_id and config.cloud_access_key_secret:
        credentials = CloudCredentials(config.cloud_access_key_id, config.cloud_access_key_secret)
    return CloudClients(config.cloud_region, config.cloud_api, credentials)
