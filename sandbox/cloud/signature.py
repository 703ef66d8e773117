"""The two signatures the official SDKs send, computed the way the server recomputes them.

ACS3-HMAC-SHA256 (tea-openapi's default: an ``Authorization`` header over a canonical
request) and the legacy RPC v1 HMAC-SHA1 (``Signature=`` in the query, chosen with
``signature_algorithm='v2'``). Pure functions: no keys, clocks or requests, so the spec's
test vectors can be checked against them directly.
"""

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

ACS3 = "ACS3-HMAC-SHA256"
V2_METHOD = "HMAC-SHA1"
V2_VERSION = "1.0"

Pairs = Iterable[tuple[str, str]]


def pct(text: str) -> str:
    """RFC 3986 percent-encoding, as both signatures use it (space is %20, ~ is kept)."""
    return quote(text, safe="~", encoding="utf-8")


def sha256_hex(data: bytes) -> str:
    """The hex SHA-256 of ``data``: the payload hash and the canonical request's digest."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Authorization:
    """The parts of an ``Authorization: ACS3-HMAC-SHA256 ...`` header."""

    algorithm: str
    credential: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str) -> Authorization | None:
    """The header's parts, or None when it is not of the form the SDK sends."""
    algorithm, _, rest = value.strip().partition(" ")
    parts = {}
    for item in rest.split(","):
        name, sep, text = item.strip().partition("=")
        if not sep:
            return None
        parts[name] = text
    if not {"Credential", "SignedHeaders", "Signature"} <= parts.keys():
        return None
    signed = tuple(name.strip().lower() for name in parts["SignedHeaders"].split(";") if name)
    return Authorization(algorithm, parts["Credential"], signed, parts["Signature"])


def canonical_query(pairs: Pairs) -> str:
    """Sorted ``key=value`` pairs, both percent-encoded, joined with ``&``."""
    return "&".join(f"{pct(key)}={pct(value)}" for key, value in sorted(pairs))


def canonical_headers(headers: Mapping[str, str], signed: Sequence[str]) -> str:
    """One ``name:value`` line per signed header; ``headers`` is keyed by lower-case name."""
    return "".join(f"{name}:{headers[name].strip()}\n" for name in signed)


def canonical_request(
    method: str,
    path: str,
    query: Pairs,
    headers: Mapping[str, str],
    signed: Sequence[str],
    payload_hash: str,
) -> str:
    """ACS3's canonical request: method, path, query, headers, header names, payload hash."""
    return "\n".join(
        (
            method.upper(),
            path or "/",
            canonical_query(query),
            canonical_headers(headers, signed),
            ";".join(signed),
            payload_hash,
        )
    )


def string_to_sign(canonical: str, algorithm: str = ACS3) -> str:
    """The algorithm's name over the canonical request's SHA-256."""
    return f"{algorithm}\n{sha256_hex(canonical.encode('utf-8'))}"


def acs3_signature(secret: str, to_sign: str) -> str:
    """The hex HMAC-SHA256 of the string to sign, keyed with the secret as it is."""
    return hmac.new(secret.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def v2_string_to_sign(method: str, params: Pairs) -> str:
    """RPC v1's string to sign: method, ``%2F`` and the encoded canonical query."""
    canonical = canonical_query((k, v) for k, v in params if k != "Signature")
    return f"{method.upper()}&%2F&{pct(canonical)}"


def v2_signature(secret: str, to_sign: str) -> str:
    """The base64 HMAC-SHA1 of the string to sign, keyed with the secret and ``&``."""
    key = f"{secret}&".encode()
    digest = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def same(expected: str, given: str) -> bool:
    """Whether two signatures are equal, compared in constant time."""
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))
