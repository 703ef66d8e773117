"""Kicking the runner on Function Compute: an asynchronous invocation of the runner function.

A kick always happens inside the request whose transaction recorded the work, so it
signs with the temporary credentials FC hands that request in its x-fc-* headers. A
kick that fails is logged and forgotten: the runner's one-minute timer is the backstop.

FC_RUNNER_FUNCTION names the runner in one of two forms, one for each deployment:
``dingpass-runner``, an FC 3.0 function (s.yaml), invoked through FC 3.0's API; or
``dingpass/runner``, a function of an FC 2.0 service (template.yml), invoked through FC 2.0's
API, where functions live under services. Both APIs answer on the account's endpoint:
FC_ENDPOINT if set, else ``https://<account>.<region>.fc.aliyuncs.com``.
"""

import io
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from backend.exceptions import ConfigError

log = logging.getLogger(__name__)
TIMEOUT_MS = 2000
PAYLOAD = json.dumps({"source": "dingpass.kick"}).encode()


@dataclass(frozen=True)
class FcCredentials:
    """Who we are on Function Compute, for one request."""

    account_id: str
    region: str
    access_key_id: str
    access_key_secret: str
    security_token: str | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> "FcCredentials | None":
        """From the x-fc-* headers FC adds to each request; None outside Function Compute."""
        key, secret = (
            headers.get("x-fc-access-key-id"),
            headers.get("x-fc-access-key-secret"),
        )
        account, region = headers.get("x-fc-account-id"), headers.get("x-fc-region")
        if not (key and secret and account and region):
            return None
        return cls(account, region, key, secret, headers.get("x-fc-security-token"))

    def endpoint(self) -> str:
        """The account's Function Compute endpoint in this region (both APIs answer there)."""
        return f"https://{self.account_id}.{self.region}.fc.aliyuncs.com"


class Invocation(Protocol):
    """One API's asynchronous invocation of the runner."""

    @property
    def name(self) -> str:
        """The runner as FC_RUNNER_FUNCTION names it."""

    def __call__(self, credentials: FcCredentials, endpoint: str) -> None: ...


@dataclass(frozen=True)
class Fc3Invocation:
    """InvokeFunction of an FC 3.0 function, with FC 3.0's official SDK."""

    name: str

    def __call__(self, credentials: FcCredentials, endpoint: str) -> None:
        """Ask FC 3.0 to run the function asynchronously; the SDK raises on failure."""
        from alibabacloud_fc20230330 import models
        from alibabacloud_fc20230330.client import Client
        from alibabacloud_tea_openapi import models as open_api
        from alibabacloud_tea_util import models as util

        scheme, _, host = endpoint.partition("://")
        client = Client(
            open_api.Config(
                access_key_id=credentials.access_key_id,
                access_key_secret=credentials.access_key_secret,
                security_token=credentials.security_token,
                protocol=scheme,
                endpoint=host,
                region_id=credentials.region,
            )
        )
        client.invoke_function_with_options(
            self.name,
            models.InvokeFunctionRequest(body=io.BytesIO(PAYLOAD)),
            models.InvokeFunctionHeaders(x_fc_invocation_type="Async"),
            util.RuntimeOptions(connect_timeout=TIMEOUT_MS, read_timeout=TIMEOUT_MS),
        )


@dataclass(frozen=True)
class Fc2Invocation:
    """InvokeFunction of a function of an FC 2.0 service, with FC 2.0's official SDK."""

    service: str
    function: str

    @property
    def name(self) -> str:
        """The function as FC_RUNNER_FUNCTION names it: ``service/function``."""
        return f"{self.service}/{self.function}"

    def __call__(self, credentials: FcCredentials, endpoint: str) -> None:
        """Ask FC 2.0 to run the function asynchronously; the SDK raises on failure."""
        import fc2  # type: ignore[import-untyped]  # FC 2.0's SDK ships no type hints
        import fc2.client  # type: ignore[import-untyped]

        # fc2 retries a failed connection five times with growing pauses (about 30 s), inside
        # the request that kicks; a kick must fail at once instead, as the timer is the
        # backstop. The SDK reads this module setting at each request.
        fc2.client.retries = 0
        client = fc2.Client(
            endpoint=endpoint,
            accessKeyID=credentials.access_key_id,
            accessKeySecret=credentials.access_key_secret,
            securityToken=credentials.security_token or "",
            Timeout=TIMEOUT_MS / 1000,
        )
        client.invoke_function(
            self.service,
            self.function,
            payload=PAYLOAD,
            headers={"x-fc-invocation-type": "Async"},
        )


class FcAsyncKick:
    """Invokes the runner function asynchronously, with the credentials of the request."""

    def __init__(
        self,
        invocation: Invocation,
        credentials: Callable[[], FcCredentials | None],
        endpoint: str | None = None,
    ) -> None:
        self.invocation, self.credentials, self.endpoint = invocation, credentials, endpoint

    def __call__(self) -> None:
        """Ask FC to run the runner now; never raises."""
        credentials = self.credentials()
        if credentials is None:
            log.info("no Function Compute credentials in this request: the timer will run the jobs")
            return
        try:
            self.invocation(credentials, self.endpoint or credentials.endpoint())
        except Exception as err:  # the SDKs raise their own kinds; a lost kick only delays work
            log.warning(
                "kicking %s failed (the timer will run the jobs): %s",
                self.invocation.name,
                err,
            )


def invocation(function_name: str) -> Invocation:
    """What FC_RUNNER_FUNCTION names: FC 3.0's ``function`` or FC 2.0's ``service/function``."""
    service, slash, function = function_name.partition("/")
    if not slash:
        return Fc3Invocation(function_name)
    if not service or not function or "/" in function:
        raise ConfigError(
            f"FC_RUNNER_FUNCTION={function_name!r} is neither an FC 3.0 function name "
            "(dingpass-runner, as s.yaml sets) nor an FC 2.0 service/function "
            "(dingpass/runner, as template.yml sets)"
        )
    return Fc2Invocation(service, function)


def request_credentials() -> FcCredentials | None:
    """The credentials of the Flask request being handled (FC's x-fc-* headers)."""
    from flask import has_request_context, request

    if not has_request_context():
        return None
    return FcCredentials.from_headers(
        {name.lower(): value for name, value in request.headers.items()}
    )


def configured_kick(function_name: str | None, endpoint: str | None) -> Callable[[], None] | None:
    """The kick a deployment configured: FC's asynchronous invocation, or none (timer only)."""
    if not function_name:
        return None
    return FcAsyncKick(invocation(function_name), request_credentials, endpoint)
