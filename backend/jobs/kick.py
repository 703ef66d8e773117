"""Kicking the runner on Function Compute: an asynchronous invocation of the runner function.

A kick always happens inside the request whose transaction recorded the work, so it
signs with the temporary credentials FC hands that request in its x-fc-* headers. A
kick that fails is logged and forgotten: the runner's one-minute timer is the backstop.
"""

import io
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)
TIMEOUT_MS = 2000


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


class FcAsyncKick:
    """Invokes the runner function asynchronously, with FC's official SDK."""

    def __init__(
        self,
        function_name: str,
        credentials: Callable[[], FcCredentials | None],
        endpoint: str | None = None,
    ) -> None:
        self.function_name, self.credentials, self.endpoint = (
            function_name,
            credentials,
            endpoint,
        )

    def __call__(self) -> None:
        """Ask FC to run the runner now; never raises."""
        credentials = self.credentials()
        if credentials is None:
            log.info("no Function Compute credentials in this request: the timer will run the jobs")
            return
        try:
            self._invoke(credentials)
        except Exception as err:  # the SDK raises its own kinds; a lost kick only delays the work
            log.warning(
                "kicking %s failed (the timer will run the jobs): %s",
                self.function_name,
                err,
            )

    def _invoke(self, credentials: FcCredentials) -> None:
        from alibabacloud_fc20230330 import models
        from alibabacloud_fc20230330.client import Client
        from alibabacloud_tea_openapi import models as open_api
        from alibabacloud_tea_util import models as util

        scheme, _, host = (
            self.endpoint
            or f"https://{credentials.account_id}.{credentials.region}.fc.aliyuncs.com"
        ).partition("://")
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
        body = io.BytesIO(json.dumps({"source": "dingpass.kick"}).encode())
        client.invoke_function_with_options(
            self.function_name,
            models.InvokeFunctionRequest(body=body),
            models.InvokeFunctionHeaders(x_fc_invocation_type="Async"),
            util.RuntimeOptions(connect_timeout=TIMEOUT_MS, read_timeout=TIMEOUT_MS),
        )


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
    return FcAsyncKick(function_name, request_credentials, endpoint) if function_name else None
