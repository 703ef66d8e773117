"""Check a dingpass license offline: the one file a product needs.

This module depends only on the standard library and ``cryptography``, so a vendor
can copy it into their product as it is. The five lines a product needs::

    from verifier import key_ring, verify, LicenseError
    RING = key_ring([open("vendor-2026.pub", "rb").read()])   # ship every key still in use
    try:
        text = open("license.lic").read()
        lic = verify(text, RING, feature_code=fingerprint(), product="acme-erp")
    except LicenseError as err: refuse_to_start(str(err))

``verify`` returns a :class:`License` or raises exactly one of the errors below, each
a :class:`LicenseError` (itself a ``ValueError``)::

    LicenseError
     +-- MalformedLicense      not a dingpass license, or damaged beyond reading
     +-- UnknownKeyId          signed by a key this product does not ship
     +-- BadSignature          altered after signing, or signed by another key
     +-- NotYetValid           its validity starts later
     +-- Expired               its validity has ended
     +-- WrongMachine          issued for another feature code (machine fingerprint)
     +-- WrongProduct          issued for another product

Format 1, the only one: an ASCII envelope around ``base64url(payload || signature)``,
where the payload is canonical JSON (RFC 8785) and the signature is Ed25519 over
``SIGNING_PREFIX + payload``. The file never chooses the algorithm or supplies a key:
the format number fixes the algorithm, and the key id only picks a key from the ring.
"""

from __future__ import annotations

import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FORMAT_VERSION = 1
BEGIN = "-----BEGIN DINGPASS LICENSE-----"
END = "-----END DINGPASS LICENSE-----"
# Domain separation: a signature made for a license can never pass as one over
# another kind of message, nor as one of a later format, signed by the same key.
SIGNING_PREFIX = b"dingpass-license\x00v1\x00"
SIGNATURE_SIZE = 64
KEY_ID_BYTES = 8
_FORMAT_TEXT = str(FORMAT_VERSION)
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_SPACE = b" \t\r\n"
_JSON = json.JSONDecoder()
_UTC = timezone.utc
_TWO_DIGITS = [f"{n:02d}" for n in range(100)]
_BASE64URL_OR_SPACE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" + _SPACE

KeyRing = Mapping[str, Ed25519PublicKey]


class LicenseError(ValueError):
    """The license cannot be used; the message says why in words for the user."""


class MalformedLicense(LicenseError):
    """The text is not a dingpass license, or is damaged beyond reading."""


class UnknownKeyId(LicenseError):
    """The license names a key that is not in the product's key ring."""


class BadSignature(LicenseError):
    """The signature does not match: the license was altered or signed by another key."""


class NotYetValid(LicenseError):
    """The license's validity period has not started."""


class Expired(LicenseError):
    """The license's validity period has ended."""


class WrongMachine(LicenseError):
    """The license was issued for another machine's feature code."""


class WrongProduct(LicenseError):
    """The license was issued for another product."""


@dataclass(frozen=True)
class Licensee:
    """Who the license is issued to."""

    company: str
    contact: str
    email: str


@dataclass(frozen=True)
class License:
    """The signed terms: who may run which product on which machine, how much, until when."""

    id: str
    product: str
    edition: str
    licensee: Licensee
    feature_code: str
    quantity: int
    issued_at: datetime
    valid_from: datetime
    valid_until: datetime | None  # None: perpetual
    entitlements: tuple[str, ...] = ()
    application: str | None = None
    key_id: str = field(default="")

    @property
    def perpetual(self) -> bool:
        """Whether the license never expires."""
        return self.valid_until is None

    def to_payload(self) -> dict[str, Any]:
        """The JSON object that is signed, keyed as the format defines."""
        return {
            "v": FORMAT_VERSION,
            "id": self.id,
            "kid": self.key_id,
            "product": self.product,
            "edition": self.edition,
            "licensee": {
                "company": self.licensee.company,
                "contact": self.licensee.contact,
                "email": self.licensee.email,
            },
            "feature_code": self.feature_code,
            "quantity": self.quantity,
            "issued_at": format_time(self.issued_at),
            "valid_from": format_time(self.valid_from),
            "valid_until": None if self.valid_until is None else format_time(self.valid_until),
            "entitlements": list(self.entitlements),
            "application": self.application,
        }

    @classmethod
    def from_payload(cls, data: Any) -> License:
        """Read the signed JSON object back; a missing or mistyped field is malformed."""
        try:
            who = data["licensee"]
            return cls(
                id=_text(data["id"]),
                product=_text(data["product"]),
                edition=_text(data["edition"]),
                licensee=Licensee(
                    _text(who["company"]), _text(who["contact"]), _text(who["email"])
                ),
                feature_code=_text(data["feature_code"]),
                quantity=_count(data["quantity"]),
                issued_at=parse_time(data["issued_at"]),
                valid_from=parse_time(data["valid_from"]),
                valid_until=None
                if data["valid_until"] is None
                else parse_time(data["valid_until"]),
                entitlements=_texts(data["entitlements"]),
                application=None if data["application"] is None else _text(data["application"]),
                key_id=_text(data["kid"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise MalformedLicense(f"the license's terms are unreadable ({err!r})") from None


def verify(
    text: str,
    public_keys: KeyRing,
    now: datetime | None = None,
    feature_code: str | None = None,
    product: str | None = None,
) -> License:
    """Return the license in ``text`` if it is genuine and holds now, else raise why not.

    ``public_keys`` maps key ids to keys (build it with :func:`key_ring`). ``now``
    defaults to the current time and must be timezone-aware. ``feature_code`` and
    ``product``, when given, must match the license's.
    """
    key_id, blob = read_envelope(text)
    key = public_keys.get(key_id)
    if key is None:
        raise UnknownKeyId(
            f"the license is signed with key {key_id}, which this product does not know; "
            "update the product or ask the vendor for a license signed with a current key"
        )
    payload, signature = blob[:-SIGNATURE_SIZE], blob[-SIGNATURE_SIZE:]
    try:
        key.verify(signature, SIGNING_PREFIX + payload)
    except InvalidSignature:
        raise BadSignature(
            "the license's signature does not match: it was altered or forged"
        ) from None
    lic = _decode_payload(payload, key_id)
    check(lic, now=now, feature_code=feature_code, product=product)
    return lic


def check(
    lic: License,
    now: datetime | None = None,
    feature_code: str | None = None,
    product: str | None = None,
) -> None:
    """Raise if the (already verified) license does not hold for this product, machine and time."""
    if product is not None and lic.product != product:
        raise WrongProduct(f"the license is for product {lic.product!r}, not {product!r}")
    if feature_code is not None and lic.feature_code != feature_code:
        raise WrongMachine(
            f"the license is for the machine with feature code {lic.feature_code!r}, "
            f"not this one ({feature_code!r}); apply for a license for this machine"
        )
    moment = _now(now)
    if moment < lic.valid_from:
        raise NotYetValid(f"the license is valid from {format_time(lic.valid_from)}")
    if lic.valid_until is not None and moment >= lic.valid_until:
        raise Expired(f"the license expired at {format_time(lic.valid_until)}; renew it")


def read_envelope(text: str) -> tuple[str, bytes]:
    """Split a license text into its key id and ``payload || signature`` bytes (unverified)."""
    start = text.find(BEGIN)
    end = text.find(END, start + 1)
    if start < 0 or end < 0:
        raise MalformedLicense(f"no license found: the text must contain {BEGIN} and {END}")
    headers, _, body = text[start + len(BEGIN) : end].strip().partition("\n\n")
    fields = _headers(headers)
    if fields.get("Format") != _FORMAT_TEXT:
        raise MalformedLicense(
            f"license format {fields.get('Format')!r} is not one this verifier reads (it reads "
            f"format {FORMAT_VERSION}); update the product"
        )
    key_id = fields.get("Key-Id")
    if not key_id:
        raise MalformedLicense("the license has no Key-Id header")
    blob = _b64decode(body)
    if len(blob) <= SIGNATURE_SIZE:
        raise MalformedLicense("the license is truncated: it is shorter than its signature")
    return key_id, blob


def decode_unverified(text: str) -> License:
    """Read a license's terms without checking its signature: for display, never for trust."""
    key_id, blob = read_envelope(text)
    return _decode_payload(blob[:-SIGNATURE_SIZE], key_id)


def key_id(public_key: Ed25519PublicKey) -> str:
    """The key's id: the start of the SHA-256 of its raw 32 bytes, in hex."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[: 2 * KEY_ID_BYTES]


def key_ring(
    keys: Iterable[Ed25519PublicKey | bytes | str],
) -> dict[str, Ed25519PublicKey]:
    """Build a key ring from public keys, given as key objects or PEM text."""
    ring = {}
    for item in keys:
        key = item if isinstance(item, Ed25519PublicKey) else _load_public_pem(item)
        ring[key_id(key)] = key
    return ring


def format_time(moment: datetime) -> str:
    """A UTC instant as the format writes it, to the second: ``2026-11-23T08:00:00Z``."""
    if moment.tzinfo is not _UTC:
        moment = moment.astimezone(_UTC)
    # Two-digit fields from a table: a third of isoformat()'s cost, and issuing formats
    # two or three instants per license.
    year = moment.year
    return (
        f"{year if year > 999 else f'{year:04d}'}-{_TWO_DIGITS[moment.month]}-"
        f"{_TWO_DIGITS[moment.day]}T{_TWO_DIGITS[moment.hour]}:"
        f"{_TWO_DIGITS[moment.minute]}:{_TWO_DIGITS[moment.second]}Z"
    )


def parse_time(value: Any) -> datetime:
    """Read an instant written by :func:`format_time`."""
    if type(value) is not str or len(value) != 20 or value[10] != "T" or value[19] != "Z":
        raise ValueError(f"{value!r} is not a UTC time like 2026-11-23T08:00:00Z")
    # "+00:00" rather than "Z": Pythons before 3.11 cannot read the latter.
    return datetime.fromisoformat(value[:19] + "+00:00")


def _decode_payload(payload: bytes, key_id: str) -> License:
    try:
        # raw_decode: the payload is canonical, with no whitespace for loads() to skip.
        text = payload.decode("utf-8")
        data, end = _JSON.raw_decode(text)
    except ValueError:
        raise MalformedLicense("the license's terms are not valid JSON") from None
    if end != len(text):
        raise MalformedLicense("the license's terms are followed by something else")
    if not isinstance(data, dict) or data.get("v") != FORMAT_VERSION:
        raise MalformedLicense(f"the license's terms are not of format {FORMAT_VERSION}")
    lic = License.from_payload(data)
    if lic.key_id != key_id:
        raise MalformedLicense(
            f"the license's Key-Id header {key_id} differs from its terms' {lic.key_id}"
        )
    return lic


def _headers(block: str) -> dict[str, str]:
    fields = {}
    for line in block.splitlines():
        name, sep, value = line.partition(":")
        if not sep:
            raise MalformedLicense(f"the license header line {line.strip()!r} is not 'Name: value'")
        fields[name.strip()] = value.strip()
    return fields


def _b64decode(body: str) -> bytes:
    text = body.encode("ascii", "replace")
    data = text.translate(_FROM_URLSAFE, _SPACE)  # standard base64 on one line
    # a2b_base64 skips what is not base64; a license must not carry anything else.
    if text.translate(None, _BASE64URL_OR_SPACE) or len(data) % 4 == 1:
        raise MalformedLicense("the license body is not base64url: was it edited or cut short?")
    return binascii.a2b_base64(data + b"=" * (-len(data) % 4))


def _load_public_pem(pem: bytes | str) -> Ed25519PublicKey:
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise TypeError(f"a dingpass public key is Ed25519, not {type(key).__name__}")
    return key


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(timezone.utc)
    if now.tzinfo is None:
        raise TypeError("now must be timezone-aware, e.g. datetime.now(timezone.utc)")
    return now


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {value!r}")
    return value


def _texts(value: Any) -> tuple[str, ...]:
    if type(value) is not list:
        raise TypeError(f"expected a list of texts, got {value!r}")
    return tuple(map(_text, value))


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise TypeError(f"expected a positive whole number, got {value!r}")
    return value
