"""A stand-in for Function Compute's front door: the gateway that checks signatures and RAM.

It does what FC does before a request reaches a function, as far as dingpass relies on it:

- FC 3.0: an HTTP trigger whose authType is ``function`` takes only a request signed with
  ACS3-HMAC-SHA256 by credentials FC knows, dated within the allowed skew, whose RAM role may
  ``fc:InvokeFunction`` that function; anything else is refused with 403 and never reaches it;
- FC 3.0: the InvokeFunction API (``POST /2023-03-30/functions/<name>/invocations``), the
  runner's kick from s.yaml's deployment, is checked the same way, then recorded;
- FC 2.0: its InvokeFunction API on the same endpoint
  (``POST /2016-08-15/services/<service>/functions/<function>/invocations``), the runner's kick
  from template.yml's deployment, is checked as FC 2.0 checks a call (below), then recorded;
- FC 2.0: the account's endpoint (``<account>.<region>[-internal].fc.aliyuncs.com``), whose
  ``/2016-08-15/proxy/<service>/<function>/<path>`` reaches an AuthType ``FUNCTION`` trigger
  only with FC 2.0's own signature (``Authorization: FC <id>:<signature>``), checked the same
  way; the function sees ``/<path>``, as a custom runtime does behind the default endpoint.

The checks are written here from the references (aliyun-openapi.md §2.1; FC 2.0's "Signature
authentication"), not imported from the code under test, so that they test the signers rather
than mirror them. Where FC's behaviour is not documented, the choice is named: the FC 3.0 skew
(FC 2.0's documented 15 minutes), the FC 3.0 payload line (the ``x-acs-content-sha256`` header
when it is signed, as the SDK does; else empty, as FC's trigger guide signs), and FC 2.0's
Content-MD5 (checked against the body when sent). The error codes are this stand-in's.
"""

import base64
import hashlib
import hmac
import io
import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from werkzeug.wrappers import Request, Response

ALGORITHM = "ACS3-HMAC-SHA256"
MAX_SKEW = 15 * 60
"""Seconds a signature's x-acs-date may be off (FC 2.0's documented limit; unverified for 3.0)."""
INVOCATION = re.compile(r"^/2023-03-30/functions/([^/]+)/invocations$")
FC2_INVOCATION = re.compile(r"^/2016-08-15/services/([^/]+)/functions/([^/]+)/invocations$")
"""FC 2.0's InvokeFunction: the service, the function."""
FC2_TRIGGER = re.compile(r"^(/2016-08-15/proxy/([^/]+)/([^/]+))(/.*)?$")
"""An FC 2.0 HTTP trigger's path: its base, the service, the function, the function's path."""


@dataclass(frozen=True)
class Sts:
    """Temporary credentials FC issued for a function's role, and what that role may invoke."""

    access_key_id: str
    access_key_secret: str
    security_token: str
    may_invoke: frozenset[str]

    def headers(self) -> dict[str, str]:
        """The x-fc-* headers FC adds to each request of a function with this role."""
        return {
            "x-fc-access-key-id": self.access_key_id,
            "x-fc-access-key-secret": self.access_key_secret,
            "x-fc-security-token": self.security_token,
            "x-fc-account-id": "1234567890",
            "x-fc-region": "cn-hangzhou",
        }


class Refused(Exception):
    """FC's gateway refuses the request (403) with a code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class FcFrontDoor:
    """FC's gateway for one account: its issued credentials and what it let through."""

    issued: Iterable[Sts]
    clock: Callable[[], float] = time.time
    passed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    invocations: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.by_key = {c.access_key_id: c for c in self.issued}

    def trigger(self, function: str, app: Callable[..., Any]) -> Callable[..., Any]:
        """The HTTP trigger (authType ``function``) of ``function``, served by ``app``."""

        def gateway(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            request = Request(environ)
            body = request.get_data()
            environ["wsgi.input"] = io.BytesIO(body)  # for the function to read again
            environ["CONTENT_LENGTH"] = str(len(body))
            try:
                self.check(function, request, body)
            except Refused as refusal:
                return self._refuse(refusal)(environ, start_response)
            self.passed.append(function)
            return app(environ, start_response)

        return gateway

    def api(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """FC's API, as far as InvokeFunction goes, FC 3.0's and FC 2.0's: checked, recorded.

        An FC 2.0 function is recorded as ``service/function``.
        """
        request = Request(environ)
        body = request.get_data()
        fc3, fc2 = INVOCATION.match(request.path), FC2_INVOCATION.match(request.path)
        if fc3:
            function, check = fc3[1], self.check
        elif fc2:
            function, check = f"{fc2[1]}/{fc2[2]}", self.check_fc2
        if request.method != "POST" or not (fc3 or fc2):
            return Response(status=404)(environ, start_response)
        try:
            check(function, request, body)
        except Refused as refusal:
            return self._refuse(refusal)(environ, start_response)
        self.passed.append(function)
        self.invocations.append(
            {"function": function, "headers": dict(request.headers), "body": body}
        )
        return Response(status=202)(environ, start_response)

    def fc2_endpoint(self, functions: dict[str, Callable[..., Any]]) -> Callable[..., Any]:
        """FC 2.0's endpoint with the AuthType ``FUNCTION`` triggers of ``service/function``."""

        def gateway(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            request = Request(environ)
            body = request.get_data()
            found = FC2_TRIGGER.match(request.path)
            name = found and f"{found[2]}/{found[3]}"
            if not found or name not in functions:
                return Response(status=404)(environ, start_response)
            try:
                self.check_fc2(name, request, body)
            except Refused as refusal:
                return self._refuse(refusal)(environ, start_response)
            self.passed.append(name)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ["PATH_INFO"] = found[4] or "/"
            environ["HTTP_X_FC_BASE_PATH"] = found[1] + "/"
            return functions[name](environ, start_response)

        return gateway

    def check_fc2(self, function: str, request: Request, body: bytes) -> None:
        """FC 2.0's check of a call to ``service/function`` (a trigger's or InvokeFunction):
        the same refusals, in FC 2.0's scheme."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        scheme, _, credential = headers.get("authorization", "").partition(" ")
        key, _, signature = credential.rpartition(":")
        if scheme != "FC" or not key:
            raise Refused("MissingAuthorization", "the request is not signed with FC's scheme")
        issued = self.by_key.get(key)
        if issued is None:
            raise Refused("InvalidAccessKeyId", f"unknown AccessKeyId {key!r}")
        if not hmac.compare_digest(headers.get("x-fc-security-token", ""), issued.security_token):
            raise Refused("InvalidSecurityToken", "the STS token is missing or not this key's")
        self._fresh_fc2(headers.get("date", ""))
        if "content-md5" in headers and headers["content-md5"] != _md5(body):
            raise Refused("InvalidDigest", "Content-MD5 is not the body's")
        expected = _fc2_signature(issued.access_key_secret, request, headers)
        if not hmac.compare_digest(expected, signature):
            raise Refused("SignatureNotMatch", "the signature does not match the request")
        if function not in issued.may_invoke:
            raise Refused("AccessDenied", f"the role may not fc:InvokeFunction {function}")

    def _fresh_fc2(self, stamp: str) -> None:
        try:
            when = parsedate_to_datetime(stamp)
        except (TypeError, ValueError):
            raise Refused("InvalidArgument", f"Date {stamp!r} is not an HTTP date") from None
        if abs(self.clock() - when.timestamp()) > MAX_SKEW:
            raise Refused("RequestTimeTooSkewed", f"Date {stamp} is too far from now")

    def check(self, function: str, request: Request, body: bytes) -> None:
        """Refused unless signed by issued credentials, fresh, for a function they may invoke."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        parts = _authorization(headers.get("authorization", ""))
        issued = self.by_key.get(parts["Credential"])
        if issued is None:
            raise Refused("InvalidAccessKeyId", f"unknown AccessKeyId {parts['Credential']!r}")
        signed = parts["SignedHeaders"].split(";")
        if "x-acs-date" not in signed or any(name not in headers for name in signed):
            raise Refused("SignatureNotMatch", "a signed header is missing")
        if "x-acs-security-token" not in signed or not hmac.compare_digest(
            headers["x-acs-security-token"], issued.security_token
        ):
            raise Refused("InvalidSecurityToken", "the STS token is missing or not this key's")
        self._fresh(headers["x-acs-date"])
        payload = self._payload(signed, headers, body)
        expected = _signature(issued.access_key_secret, request, signed, headers, payload)
        if not hmac.compare_digest(expected, parts["Signature"]):
            raise Refused("SignatureNotMatch", "the signature does not match the request")
        if function not in issued.may_invoke:
            raise Refused("AccessDenied", f"the role may not fc:InvokeFunction {function}")

    def _fresh(self, stamp: str) -> None:
        try:
            when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        except ValueError:
            raise Refused("InvalidArgument", f"x-acs-date {stamp!r} is not ISO 8601") from None
        if abs(self.clock() - when.timestamp()) > MAX_SKEW:
            raise Refused("RequestTimeTooSkewed", f"x-acs-date {stamp} is too far from now")

    @staticmethod
    def _payload(signed: list[str], headers: dict[str, str], body: bytes) -> str:
        if "x-acs-content-sha256" not in signed:
            return ""
        if headers["x-acs-content-sha256"] != hashlib.sha256(body).hexdigest():
            raise Refused("SignatureNotMatch", "x-acs-content-sha256 is not the body's")
        return headers["x-acs-content-sha256"]

    def _refuse(self, refusal: Refused) -> Response:
        self.refused.append(refusal.code)
        body = {"Code": refusal.code, "Message": refusal.message}
        return Response(json.dumps(body), status=403, mimetype="application/json")


def _authorization(value: str) -> dict[str, str]:
    algorithm, _, rest = value.partition(" ")
    if algorithm != ALGORITHM:
        raise Refused("MissingAuthorization", "the request is not signed with ACS3-HMAC-SHA256")
    parts = dict(p.split("=", 1) for p in rest.split(",") if "=" in p)
    if not {"Credential", "SignedHeaders", "Signature"} <= set(parts):
        raise Refused("InvalidAuthorization", "Authorization lacks a part")
    return parts


def _signature(
    secret: str, request: Request, signed: list[str], headers: dict[str, str], payload: str
) -> str:
    raw = urlsplit(request.environ.get("RAW_URI") or request.full_path)
    query = parse_qsl(raw.query, keep_blank_values=True)
    canonical_query = "&".join(
        f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(query)
    )
    block = "".join(f"{name}:{headers[name].strip()}\n" for name in signed)
    canonical = "\n".join(
        [request.method, raw.path or "/", canonical_query, block, ";".join(signed), payload]
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return hmac.new(secret.encode(), f"{ALGORITHM}\n{digest}".encode(), hashlib.sha256).hexdigest()


def _md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()  # noqa: S324 -- FC's digest


def _fc2_signature(secret: str, request: Request, headers: dict[str, str]) -> str:
    raw = urlsplit(request.environ.get("RAW_URI") or request.full_path)
    resource = unquote(raw.path)
    if FC2_TRIGGER.match(resource):  # a trigger's call signs its query too; an API call does not
        query = parse_qsl(raw.query, keep_blank_values=True)
        resource += "\n" + "\n".join(sorted(f"{k}={v}" for k, v in query))
    fc_headers = "".join(f"{n}:{headers[n]}\n" for n in sorted(headers) if n.startswith("x-fc-"))
    to_sign = "\n".join(
        [
            request.method,
            headers.get("content-md5", ""),
            headers.get("content-type", ""),
            headers.get("date", ""),
            fc_headers + resource,
        ]
    )
    mac = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()
