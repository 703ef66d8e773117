"""The backend as the frontend sees it: one pool of keep-alive connections, short timeouts.

Every request carries the proxy's HMAC signature. On Function Compute it is also signed
with the frontend's temporary credentials, as the backend's ``function``-auth trigger wants,
in the scheme of the FC generation that runs it (frontend/fc_signature.py).

Two ways to send: ``send`` forwards the page's calls (a JSON body the proxy describes), and
``relay`` passes on a changes API call as its caller signed it: path, query, body and the
headers of the caller's own signature unchanged, the answer's status and headers back.
"""

import base64
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import formatdate, parsedate_to_datetime
from urllib.parse import parse_qsl, urlsplit

from frontend.backend_pool import BackendPool
from frontend.exceptions import BadRequest
from frontend.fc_signature import (
    DATE,
    FC2_SECURITY_TOKEN,
    SECURITY_TOKEN,
    FcCredentials,
    FcScheme,
    authorization,
    fc2_authorization,
    fc2_trigger_headers,
    trigger_headers,
)
from frontend.signed_requests import signed_headers

CONNECT_TIMEOUT = 2.0
"""Seconds to open a connection; the read timeout is the configured backend timeout."""
POOL_SIZE = 16
RELAYED_ANSWER_HEADERS = (
    "Content-Type",
    "Content-Disposition",  # a batch's codes as a CSV download, with its file name
    "Location",
    "Idempotent-Replayed",
    "X-Ca-Error-Message",
    "Retry-After",
)
"""The backend's answer headers a relay hands back to the caller."""
_RELAYED_BY_KEY = tuple((name.lower(), name) for name in RELAYED_ANSWER_HEADERS)
"""The same, each beside the lower-case name the pool's answer keeps it under."""
FC2_DATE_SKEW = 15 * 60
"""Seconds FC 2.0's gateway lets a signed request's Date be off (its signature reference)."""
UNRESERVED_NAME = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
"""Characters a relayed query parameter's name may have: FC signs names as they are sent."""


@dataclass(frozen=True)
class BackendResponse:
    """What the backend answered, to relay."""

    status: int
    body: bytes
    retry_after: str | None
    headers: dict[str, str] = field(default_factory=dict)
    """The answer's RELAYED_ANSWER_HEADERS that it carried."""


@dataclass(frozen=True)
class Relayed:
    """A caller's signed request, to pass on as it came.

    ``query`` is the raw text after ``?``; ``headers`` are those the caller's signature may
    cover, each sent on unchanged (the relay adds its own, never in place of one of these).
    """

    method: str
    path: str
    query: str
    body: bytes
    headers: Mapping[str, str]


class BackendClient:
    """Sends signed requests to the backend over one pool of kept-alive connections
    (frontend/backend_pool.py), opened as calls need them: a cold instance's first answers,
    the page and its catalogue, need no backend."""

    def __init__(
        self,
        base_url: str,
        secret: str,
        timeout: float,
        clock: Callable[[], float] = time.time,
        scheme: FcScheme = "fc3",
    ) -> None:
        self.secret, self.clock = secret.encode(), clock
        self.base_url, self.base_path = base_url, urlsplit(base_url).path
        self.timeout, self.scheme = timeout, scheme
        self.pool = BackendPool(base_url, CONNECT_TIMEOUT, timeout, POOL_SIZE)

    def send(
        self,
        method: str,
        path: str,
        body: bytes,
        client_ip: str,
        idempotency_key: str | None = None,
        credentials: FcCredentials | None = None,
    ) -> BackendResponse:
        """Forward one request; BackendUnavailable or BackendTimeout if it fails.

        With ``credentials`` (FC's, from the request being relayed) FC's gateway can check it.
        """
        now = self.clock()
        headers = signed_headers(
            self.secret, method, path, int(now), client_ip, idempotency_key, body
        )
        headers["Content-Type"] = "application/json"
        target = self.base_path + path  # the path FC's gateway sees, and signs
        if credentials is not None:
            headers.update(self._fc_headers(credentials, method, target, headers, now))
        return self._exchange(method, target, body, headers)

    def relay(
        self, call: Relayed, client_ip: str, credentials: FcCredentials | None = None
    ) -> BackendResponse:
        """Pass ``call`` on to the same path and query, signed by the proxy (and for FC) too.

        BadRequest for a query FC could not be signed for as sent (query_parameters) or, on
        FC 2.0, a Date or Content-MD5 its gateway would refuse; BackendUnavailable or
        BackendTimeout if the backend cannot be reached in time.
        """
        now = self.clock()
        parameters = query_parameters(call.query)
        target = call.path + (f"?{call.query}" if call.query else "")
        headers = dict(call.headers)
        headers.update(
            signed_headers(self.secret, call.method, target, int(now), client_ip, None, call.body)
        )
        if credentials is not None:
            path = self.base_path + call.path
            headers.update(
                self._relay_fc_headers(credentials, call, path, headers, parameters, now)
            )
        return self._exchange(call.method, self.base_path + target, call.body, headers)

    def _exchange(
        self, method: str, target: str, body: bytes, headers: dict[str, str]
    ) -> BackendResponse:
        # No body rather than an empty one, so a GET carries no Content-Length.
        answer = self.pool.exchange(method, target, body or None, headers)
        given = answer.headers
        kept = {name: given[key] for key, name in _RELAYED_BY_KEY if key in given}
        return BackendResponse(answer.status, answer.body, given.get("retry-after"), kept)

    def _fc_headers(
        self,
        credentials: FcCredentials,
        method: str,
        path: str,
        headers: dict[str, str],
        now: float,
    ) -> dict[str, str]:
        if self.scheme == "fc2":
            return fc2_trigger_headers(credentials, method, path, headers, now)
        return trigger_headers(credentials, method, path, now)

    def _relay_fc_headers(
        self,
        credentials: FcCredentials,
        call: Relayed,
        path: str,
        headers: dict[str, str],
        query: dict[str, str],
        now: float,
    ) -> dict[str, str]:
        """FC's signature of a relayed call: its query signed too, and on FC 2.0 its own Date."""
        if self.scheme == "fc2":
            return _fc2_relay_headers(credentials, call, path, headers, query, now)
        stamp = datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        signed = {DATE: stamp, SECURITY_TOKEN: credentials.security_token}
        value = authorization(credentials, call.method, path.replace("$", "%24"), query, signed)
        return {**signed, "Authorization": value}

    def close(self) -> None:
        """Close the pooled connections."""
        self.pool.close()


def query_parameters(query: str) -> dict[str, str]:
    """A relayed call's query as FC signs it: each name once, values decoded; else BadRequest.

    FC's gateway checks its signature over the decoded query, so a name given twice, a name
    it would encode differently, or a character no URL may carry could not be signed as sent.
    """
    if not all("!" <= char <= "~" for char in query):
        raise _query_refused("characters outside printable ASCII")
    pairs = parse_qsl(query, keep_blank_values=True)
    names = [name for name, _ in pairs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise _query_refused(f"the parameter {repeated[0]!r} more than once")
    odd = [name for name in names if not name or not set(name) <= UNRESERVED_NAME]
    if odd:
        raise _query_refused(f"the parameter name {odd[0]!r}")
    return dict(pairs)


def _query_refused(what: str) -> BadRequest:
    message = {
        "zh": "查询字符串无法转发：参数名只能使用字母、数字和 -._~，每个参数只能出现一次。",
        "en": f"The query has {what}; name each parameter once, in letters, digits and -._~.",
    }
    return BadRequest(message["zh"], message["en"], {"query": message})


def _fc2_relay_headers(
    credentials: FcCredentials,
    call: Relayed,
    path: str,
    headers: dict[str, str],
    query: dict[str, str],
    now: float,
) -> dict[str, str]:
    """FC 2.0 signs Date and Content-MD5, and its gateway checks them: the caller's are kept."""
    given = {name.lower(): value for name, value in call.headers.items()}
    if "date" in given:
        _check_fc2_date(given["date"], now)
    if "content-md5" in given and given["content-md5"] != _md5(call.body):
        raise _header_refused(
            "Content-MD5", "Content-MD5 与请求体不符。", "Content-MD5 is not that of the body sent."
        )
    added = {} if "date" in given else {"Date": formatdate(now, usegmt=True)}
    if credentials.security_token:
        added[FC2_SECURITY_TOKEN] = credentials.security_token
    signed = {**headers, **added}
    added["Authorization"] = fc2_authorization(credentials, call.method, path, signed, query)
    return added


def _check_fc2_date(value: str, now: float) -> None:
    try:
        moment = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        moment = None
    if moment is None or abs(now - moment) > FC2_DATE_SKEW:
        raise _header_refused(
            "Date",
            "Date 应为当前时间（HTTP 日期格式，误差不超过 15 分钟），或不发送。",
            f"Date {value[:40]!r} must be the current time as an HTTP date, within 15 "
            "minutes, or be left out.",
        )


def _header_refused(name: str, zh: str, en: str) -> BadRequest:
    return BadRequest(zh, en, {name: {"zh": zh, "en": en}})


def _md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()  # noqa: S324 -- the protocol's
