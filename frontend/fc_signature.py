"""Sign a call to a Function Compute HTTP trigger whose authType is ``function``.

FC's gateway checks the signature before the request reaches the function. Two schemes, one
per generation; the frontend's config picks one from the backend's URL (``FcScheme``).

FC 3.0 (``s.yaml``) checks an ACS3-HMAC-SHA256 signature. This is the algorithm of Alibaba
Cloud's signing utility (``alibabacloud-openapi-util``, ``Client.get_authorization``) in the
form FC's guide "Configure signature authentication for HTTP triggers" uses it: the signed
headers are ``x-acs-date`` and ``x-acs-security-token``, and the payload line is empty.

FC 2.0 (``template.yml``) checks its own ``Authorization: FC <AccessKeyID>:<Signature>``:
base64 HMAC-SHA256 over the method, Content-MD5, Content-Type, Date, the ``x-fc-*`` headers and
the decoded path ``/2016-08-15/proxy/<service>/<function>/...`` followed by the sorted query
(FC 2.0's "Signature authentication" reference; ``fc2/auth.py`` of the official SDK). The
STS token goes in ``x-fc-security-token``, which is signed with it.

Neither scheme covers the body; the proxy's own HMAC (frontend/signed_requests.py) does.
Written with hashlib and hmac so the frontend's package carries no Alibaba Cloud SDK; tests
hold each to the official utility or SDK and to published vectors.

The credentials are the temporary ones FC hands each request of the frontend (the
``x-fc-access-key-id``, ``-secret`` and ``x-fc-security-token`` headers): nothing is stored.
"""

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import formatdate
from typing import Literal
from urllib.parse import quote, unquote, urlsplit

ALGORITHM = "ACS3-HMAC-SHA256"
DATE = "x-acs-date"
SECURITY_TOKEN = "x-acs-security-token"  # noqa: S105 -- a header's name, not a secret
FC2_PROXY = "/2016-08-15/proxy/"
"""How an FC 2.0 HTTP trigger's path begins: then ``<service>/<function>/<path>``."""
FC2_SECURITY_TOKEN = "x-fc-security-token"  # noqa: S105 -- a header's name, not a secret

FcScheme = Literal["fc2", "fc3"]
"""Which generation of Function Compute guards the backend's trigger, and so how to sign."""


def scheme_for(url: str) -> FcScheme:
    """``fc2`` for an FC 2.0 trigger URL (``.../2016-08-15/proxy/<service>/<function>``)."""
    return "fc2" if (urlsplit(url).path + "/").startswith(FC2_PROXY) else "fc3"


@dataclass(frozen=True)
class FcCredentials:
    """The function's temporary credentials for one request (never logged)."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(default="", repr=False)

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> "FcCredentials | None":
        """From the x-fc-* headers FC adds to each request; None outside Function Compute."""
        key = headers.get("x-fc-access-key-id", "")
        secret = headers.get("x-fc-access-key-secret", "")
        if not (key and secret):
            return None
        return cls(key, secret, headers.get("x-fc-security-token", ""))


def canonical_query(query: Mapping[str, str]) -> str:
    """Sorted ``key=value`` pairs joined by ``&``, values percent-encoded (RFC 3986, ~ kept)."""
    return "&".join(f"{k}={quote(query[k], safe='~')}" for k in sorted(query))


def canonical_headers(headers: Mapping[str, str]) -> tuple[str, str]:
    """The canonical header block and the ``;``-joined names of the signed headers."""
    lowered = {name.lower(): value.strip() for name, value in headers.items()}
    names = sorted(lowered)
    return "".join(f"{n}:{lowered[n]}\n" for n in names), ";".join(names)


def authorization(
    credentials: FcCredentials,
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    payload: str = "",
) -> str:
    """The ``Authorization`` value for a request whose ``headers`` are all to be signed."""
    block, signed = canonical_headers(headers)
    request = "\n".join(
        [method.upper(), path or "/", canonical_query(query), block, signed, payload]
    )
    to_sign = f"{ALGORITHM}\n{hashlib.sha256(request.encode()).hexdigest()}"
    mac = hmac.new(credentials.access_key_secret.encode(), to_sign.encode(), hashlib.sha256)
    return (
        f"{ALGORITHM} Credential={credentials.access_key_id},"
        f"SignedHeaders={signed},Signature={mac.hexdigest()}"
    )


def trigger_headers(
    credentials: FcCredentials, method: str, path: str, now: float
) -> dict[str, str]:
    """The headers that let FC's gateway pass a call to an authType ``function`` trigger.

    ``path`` is the URL's path as sent (no query: the proxy forwards none); ``now`` is a Unix
    time. A ``$`` in the path is signed as ``%24``, as FC's guide does.
    """
    stamp = datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {DATE: stamp, SECURITY_TOKEN: credentials.security_token}
    signed_path = path.replace("$", "%24")
    headers["Authorization"] = authorization(credentials, method, signed_path, {}, headers)
    return headers


def fc2_authorization(
    credentials: FcCredentials,
    method: str,
    path: str,
    headers: Mapping[str, str],
    query: Mapping[str, str] | None = None,
) -> str:
    """FC 2.0's ``Authorization`` value for a call to a trigger: ``FC <id>:<signature>``.

    ``headers`` are all the request's headers (every ``x-fc-*`` one is signed); ``path`` is
    the URL's path, decoded here, as FC decodes it before checking.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    fc_headers = "".join(f"{n}:{lowered[n]}\n" for n in sorted(lowered) if n.startswith("x-fc-"))
    params = "\n".join(sorted(f"{k}={v}" for k, v in (query or {}).items()))
    to_sign = "\n".join(
        [
            method.upper(),
            lowered.get("content-md5", ""),
            lowered.get("content-type", ""),
            lowered.get("date", ""),
            f"{fc_headers}{unquote(path)}\n{params}",
        ]
    )
    mac = hmac.new(credentials.access_key_secret.encode(), to_sign.encode(), hashlib.sha256)
    return f"FC {credentials.access_key_id}:{base64.b64encode(mac.digest()).decode()}"


def fc2_trigger_headers(
    credentials: FcCredentials, method: str, path: str, headers: Mapping[str, str], now: float
) -> dict[str, str]:
    """The headers that let FC 2.0's gateway pass a call to an AuthType ``FUNCTION`` trigger.

    ``headers`` are the others the request carries (its Content-Type is signed); ``path`` is
    the URL's path, ``/2016-08-15/proxy/<service>/<function>/...``; ``now`` is a Unix time.
    """
    added = {"Date": formatdate(now, usegmt=True)}
    if credentials.security_token:
        added[FC2_SECURITY_TOKEN] = credentials.security_token
    added["Authorization"] = fc2_authorization(credentials, method, path, {**headers, **added})
    return added
