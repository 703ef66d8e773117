"""Alibaba Cloud API Gateway's application signature, read from a request: pure, no I/O.

String to sign (doc 29475 §3.2, and the official SDKs; /work/shared/apigateway-signature.md):

    METHOD\\nAccept\\nContent-MD5\\nContent-Type\\nDate\\n
    name:value\\n ...            one line per name in X-Ca-Signature-Headers, sorted
    path?k=v&k&...              query and form parameters, URL-decoded, sorted by key

The names are used as the client spelled them in X-Ca-Signature-Headers: the SDKs send
``x-ca-key``, the older demos ``X-Ca-Key``, and each signs its own spelling.
"""

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qsl

from backend.apps.errors import BadSignatureMethod, Unsigned

KEY = "x-ca-key"
TIMESTAMP = "x-ca-timestamp"
NONCE = "x-ca-nonce"
SIGNATURE_METHOD = "x-ca-signature-method"
SIGNATURE_HEADERS = "x-ca-signature-headers"
SIGNATURE = "x-ca-signature"
CONTENT_MD5 = "content-md5"
CONTENT_TYPE = "content-type"
FIELDS = ("accept", CONTENT_MD5, CONTENT_TYPE, "date")
"""Headers with a line of their own in the string to sign, in its order."""
NEVER_IN_BLOCK = frozenset({SIGNATURE, SIGNATURE_HEADERS, *FIELDS})
"""Names left out of the headers block even when listed (doc 29475; the Java demo)."""
MUST_BE_SIGNED = (KEY, TIMESTAMP, NONCE)
"""Signed headers the replay checks stand on: unsigned, they could be swapped for fresh ones."""
DEFAULT_METHOD = "HmacSHA256"
ALGORITHMS = {"hmacsha256": "sha256", "hmacsha1": "sha1"}
"""X-Ca-Signature-Method, in lower case, to hashlib's name of its digest."""
FORM = "application/x-www-form-urlencoded"


class Headers(Protocol):
    """Request headers: a dict, or werkzeug's Headers (every value of a repeated name)."""

    def items(self) -> Iterable[tuple[str, str]]: ...


@dataclass(frozen=True)
class SignedRequest:
    """What a request's signature headers claim, and the text the signature must be of."""

    app_key: str
    timestamp: str
    nonce: str
    method: str
    """HmacSHA256 or HmacSHA1, as the client spelled it."""
    signature: str
    string_to_sign: str
    content_md5: str | None
    """The Content-MD5 header, if one was sent: it must be the body's."""
    form: bool = False
    """Whether the body is a url-encoded form, whose fields the signature covers itself."""


def read(
    method: str, path: str, query_string: str | bytes, headers: Headers, body: bytes
) -> SignedRequest:
    """The signature a request carries and its string to sign; Unsigned or BadSignatureMethod.

    ``path`` is the path as the client sent it; ``query_string`` the raw text after ``?``.
    """
    values = lowered(headers)
    names = _checked_names(values)
    algorithm = values.get(SIGNATURE_METHOD) or DEFAULT_METHOD
    if algorithm.lower() not in ALGORITHMS:
        raise BadSignatureMethod(algorithm)
    params = merged(_pairs(query_string), _form_pairs(values.get(CONTENT_TYPE, ""), body))
    return SignedRequest(
        app_key=values[KEY],
        timestamp=values[TIMESTAMP],
        nonce=values[NONCE],
        method=algorithm,
        signature=values[SIGNATURE],
        string_to_sign=string_to_sign(method, values, names, path, params),
        content_md5=values.get(CONTENT_MD5) or None,
        form=values.get(CONTENT_TYPE, "").lower().startswith(FORM),
    )


def string_to_sign(
    method: str,
    headers: Mapping[str, str],
    names: Iterable[str],
    path: str,
    params: Mapping[str, str],
) -> str:
    """The text to sign; ``headers`` by lower-case name, ``names`` as the client spelled them."""
    fields = [method.upper(), *(headers.get(field, "") for field in FIELDS)]
    block = "".join(
        f"{name}:{headers.get(name.lower(), '')}\n"
        for name in sorted(set(names))  # by code point, as Java's TreeMap of the SDK
        if name.lower() not in NEVER_IN_BLOCK
    )
    return "\n".join(fields) + "\n" + block + resource(path, params)


def resource(path: str, params: Mapping[str, str]) -> str:
    """The path and its parameters sorted by key; an empty value is the bare key."""
    if not params:
        return path
    pairs = (key if value == "" else f"{key}={value}" for key, value in sorted(params.items()))
    return f"{path}?{'&'.join(pairs)}"


def sign(secret: str, string: str, method: str = DEFAULT_METHOD) -> str:
    """Base64 of the HMAC of ``string`` with ``secret`` (HmacSHA256 or HmacSHA1, any case)."""
    digest = ALGORITHMS[method.lower()]
    mac = hmac.new(secret.encode("utf-8"), string.encode("utf-8"), digest).digest()
    return base64.b64encode(mac).decode("ascii")


def content_md5(body: bytes) -> str:
    """Base64 of the MD5 of ``body``: what Content-MD5 must say."""
    return base64.b64encode(hashlib.md5(body).digest()).decode("ascii")  # noqa: S324 -- the protocol's checksum, not a secret


def lowered(headers: Headers) -> dict[str, str]:
    """The first value of each header by lower-case name, trimmed as the SDKs trim them."""
    values: dict[str, str] = {}
    for name, value in headers.items():
        values.setdefault(name.lower(), value.strip())
    return values


def signed_names(listed: str) -> list[str]:
    """The names in X-Ca-Signature-Headers, as spelled, in any order, blanks dropped."""
    return [name.strip() for name in listed.split(",") if name.strip()]


def merged(query: Iterable[tuple[str, str]], form: Iterable[tuple[str, str]]) -> dict[str, str]:
    """One value per parameter: the first of each key, and a form's over the query's (SDKs)."""
    return {**_first_values(query), **_first_values(form)}


def _first_values(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, value in pairs:
        values.setdefault(key, value)
    return values


def _pairs(encoded: str | bytes) -> list[tuple[str, str]]:
    text = encoded.decode("utf-8", "replace") if isinstance(encoded, bytes) else encoded
    return parse_qsl(text, keep_blank_values=True)


def _form_pairs(content_type: str, body: bytes) -> list[tuple[str, str]]:
    # Only a url-encoded form's fields are signed as parameters; any other body by Content-MD5.
    if not content_type.lower().startswith(FORM):
        return []
    return _pairs(body)


def _checked_names(values: Mapping[str, str]) -> list[str]:
    """The signed names, once every signature header is there and the replay checks' signed."""
    required = (KEY, TIMESTAMP, NONCE, SIGNATURE, SIGNATURE_HEADERS)
    missing = [name for name in required if not values.get(name)]
    if missing:
        raise _missing(missing)
    names = signed_names(values[SIGNATURE_HEADERS])
    lowered_names = {name.lower() for name in names}
    unsigned = [name for name in MUST_BE_SIGNED if name not in lowered_names]
    if unsigned:
        raise _unsigned(unsigned)
    return names


def _missing(names: list[str]) -> Unsigned:
    listed = ", ".join(names)
    return Unsigned(
        f"请求缺少签名头 {listed}；请按 API 网关的摘要签名方式签名（X-Ca-Key、X-Ca-Timestamp、"
        "X-Ca-Nonce、X-Ca-Signature-Headers、X-Ca-Signature）。",
        f"The request lacks the signature headers {listed}; sign it as API Gateway's apps do "
        "(X-Ca-Key, X-Ca-Timestamp, X-Ca-Nonce, X-Ca-Signature-Headers, X-Ca-Signature).",
    )


def _unsigned(names: list[str]) -> Unsigned:
    listed = ", ".join(names)
    return Unsigned(
        f"X-Ca-Signature-Headers 未列出 {listed}；这些头必须参与签名，否则重放保护可被绕过。",
        f"X-Ca-Signature-Headers does not list {listed}; these headers must be signed, or the "
        "replay protection could be forged.",
    )
