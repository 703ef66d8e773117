"""Who is calling: the signature checked against the key table, the clock and the nonces seen.

Both schemes the SDKs use are accepted: ACS3-HMAC-SHA256 in an ``Authorization`` header
(the default) and RPC v1 HMAC-SHA1 in the query (``signature_algorithm='v2'``). A key that
was given with an STS token is only accepted with that token, as STS keys are.
"""

import threading
import time
from calendar import timegm
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sandbox.cloud import signature
from sandbox.cloud.errors import ApiError

ACCOUNT_ID = "1234567890123456"
"""The one account every sandbox key belongs to (ClientTokens are per account)."""
WINDOW_SECONDS = 15 * 60
"""How far x-acs-date / Timestamp may be from the server's clock, either way."""
ACS3_MUST_SIGN = (
    "host",
    "x-acs-action",
    "x-acs-version",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-content-sha256",
)
"""The headers the V3 signature specification requires to be signed."""
V2_COMMON = (
    "AccessKeyId",
    "Signature",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "Timestamp",
)
V2_ONLY = (*V2_COMMON, "SecurityToken", "Format", "Action", "Version")
"""Parameters of the v1 scheme itself, not of the API: ignored by ClientToken comparisons."""
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class Key:
    """An access key's secret, and its STS token when it is a temporary key."""

    secret: str
    token: str | None = None


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: its key, the account that owns it, and the scheme it used."""

    access_key_id: str
    account: str
    scheme: str


@dataclass(frozen=True)
class Incoming:
    """The parts of an HTTP request a signature covers."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: Mapping[str, str]
    """Keyed by lower-case name."""
    body: bytes = b""
    form: list[tuple[str, str]] = field(default_factory=list)


def incomplete(why: str) -> ApiError:
    """A request whose signature cannot even be checked."""
    return ApiError(
        400,
        "IncompleteSignature",
        f"The request signature does not conform to Aliyun standards. {why}",
    )


def mismatch(to_sign: str | None) -> ApiError:
    """A signature that is not the one the server computes."""
    shown = f" server string to sign is:{to_sign}" if to_sign is not None else ""
    return ApiError(
        400,
        "SignatureDoesNotMatch",
        f"Specified signature does not match our calculation.{shown}",
    )


def parse_time(value: str | None) -> float | None:
    """Seconds since the epoch of a ``yyyy-MM-ddTHH:mm:ssZ`` UTC time, or None."""
    if value is None:
        return None
    try:
        return float(timegm(time.strptime(value, TIME_FORMAT)))
    except ValueError:
        return None


class NonceBook:
    """The nonces each key has used within the window: a second use is a replay."""

    def __init__(self, keep_seconds: float) -> None:
        self._keep = keep_seconds
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def use(self, access_key_id: str, nonce: str, now: float) -> bool:
        """Record a nonce; False when the key has used it already."""
        with self._lock:
            if len(self._seen) > 10_000:  # pruned in bulk, so a call stays O(1)
                self._seen = {k: t for k, t in self._seen.items() if t > now}
            seen = self._seen.get((access_key_id, nonce))
            if seen is not None and seen > now:
                return False
            self._seen[(access_key_id, nonce)] = now + self._keep
            return True


class Authenticator:
    """Checks a request's signature, date, nonce and STS token against the key table."""

    def __init__(
        self,
        keys: Mapping[str, Key],
        clock: Callable[[], float] = time.time,
        account: str = ACCOUNT_ID,
    ) -> None:
        self.keys = dict(keys)
        self.clock = clock
        self.account = account
        self.nonces = NonceBook(2 * WINDOW_SECONDS)

    def authenticate(self, incoming: Incoming) -> Caller:
        """The caller, or the ApiError the service answers with."""
        authorization = incoming.headers.get("authorization")
        if authorization is not None:
            return self._acs3(incoming, authorization)
        params = dict([*incoming.query, *incoming.form])
        if "Signature" in params:
            return self._v2(incoming, params)
        raise incomplete("There is neither an Authorization header nor a Signature parameter.")

    def _key(self, access_key_id: str) -> Key:
        key = self.keys.get(access_key_id)
        if key is None:
            raise ApiError(400, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        return key

    def _acs3(self, incoming: Incoming, header: str) -> Caller:
        parts = signature.parse_authorization(header)
        if parts is None:
            raise incomplete("The Authorization header is malformed.")
        if parts.algorithm != signature.ACS3:
            raise incomplete(f"Signature algorithm {parts.algorithm!r} is not supported here.")
        key = self._key(parts.credential)
        headers = incoming.headers
        self._check_acs3_headers(parts, headers)
        payload = signature.sha256_hex(incoming.body)
        if headers["x-acs-content-sha256"] != payload:
            raise ApiError(
                400,
                "SignatureDoesNotMatch",
                "x-acs-content-sha256 is not the SHA-256 of the request body.",
            )
        canonical = signature.canonical_request(
            incoming.method, incoming.path, incoming.query, headers, parts.signed_headers, payload
        )
        to_sign = signature.string_to_sign(canonical)
        if not signature.same(signature.acs3_signature(key.secret, to_sign), parts.signature):
            raise mismatch(to_sign)
        token = headers.get("x-acs-security-token")
        if token is not None and headers.get("x-acs-accesskey-id") != parts.credential:
            raise ApiError(
                400,
                "InvalidSecurityToken.MismatchWithAccessKey",
                "x-acs-accesskey-id must be the access key of the Credential.",
            )
        return self._admit(
            parts.credential,
            key,
            token,
            headers["x-acs-date"],
            headers["x-acs-signature-nonce"],
            "ACS3",
        )

    @staticmethod
    def _check_acs3_headers(parts: signature.Authorization, headers: Mapping[str, str]) -> None:
        # Every common header present is signed (the V3 specification), not just the six.
        must = [*ACS3_MUST_SIGN, *(name for name in headers if name.startswith("x-acs-"))]
        unsigned = [name for name in must if name not in parts.signed_headers]
        if unsigned:
            raise incomplete(f"These headers must be signed: {', '.join(unsigned)}.")
        absent = [name for name in parts.signed_headers if name not in headers]
        if absent:
            raise incomplete(f"Signed headers are missing from the request: {', '.join(absent)}.")

    def _v2(self, incoming: Incoming, params: dict[str, str]) -> Caller:
        absent = [name for name in V2_COMMON if not params.get(name)]
        if absent:
            raise incomplete(f"These parameters are required: {', '.join(absent)}.")
        if (params["SignatureMethod"], params["SignatureVersion"]) != (
            signature.V2_METHOD,
            signature.V2_VERSION,
        ):
            raise incomplete("SignatureMethod must be HMAC-SHA1 and SignatureVersion 1.0.")
        key = self._key(params["AccessKeyId"])
        to_sign = signature.v2_string_to_sign(incoming.method, [*incoming.query, *incoming.form])
        if not signature.same(signature.v2_signature(key.secret, to_sign), params["Signature"]):
            raise mismatch(None)  # its string to sign holds parameter values: not echoed
        return self._admit(
            params["AccessKeyId"],
            key,
            params.get("SecurityToken"),
            params["Timestamp"],
            params["SignatureNonce"],
            "v2",
        )

    def _admit(
        self, access_key_id: str, key: Key, token: str | None, date: str, nonce: str, scheme: str
    ) -> Caller:
        """The checks both schemes share, after the signature: token, clock, then nonce."""
        _check_token(key, token)
        now = self.clock()
        at = parse_time(date)
        if at is None:
            raise ApiError(
                400,
                "IllegalTimestamp",
                f"The time {date!r} is not of the form yyyy-MM-ddTHH:mm:ssZ.",
            )
        if abs(now - at) > WINDOW_SECONDS:
            raise ApiError(
                400,
                "IllegalTimestamp",
                f"The time {date} is more than {WINDOW_SECONDS // 60} minutes from the server's.",
            )
        if not self.nonces.use(access_key_id, nonce, now):
            raise ApiError(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        return Caller(access_key_id, self.account, scheme)


def _check_token(key: Key, token: str | None) -> None:
    if key.token is None and token is not None:
        raise ApiError(
            400, "InvalidSecurityToken.Malformed", "A security token was sent with a permanent key."
        )
    if key.token is not None and token is None:
        raise ApiError(
            400,
            "MissingSecurityToken",
            "This access key is temporary: its security token is required.",
        )
    if key.token is not None and not signature.same(key.token, token or ""):
        raise ApiError(
            400,
            "InvalidSecurityToken.MismatchWithAccessKey",
            "The security token does not belong to this access key.",
        )
