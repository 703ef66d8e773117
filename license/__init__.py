"""Signed license files and activation-code strings: pure, offline, no I/O but files.

``license.verifier`` is the part vendors copy into their products; the rest issues.
"""

from license.exceptions import (
    ActivationCodeError,
    BadSignature,
    Expired,
    LicenseError,
    MalformedLicense,
    NotYetValid,
    PayloadError,
    SigningKeyError,
    UnknownKeyId,
    WrongMachine,
    WrongProduct,
)
from license.issuer import Issuer, new_license_id
from license.verifier import (
    License,
    Licensee,
    decode_unverified,
    key_id,
    key_ring,
    verify,
)

__all__ = [
    "ActivationCodeError",
    "BadSignature",
    "Expired",
    "Issuer",
    "License",
    "LicenseError",
    "Licensee",
    "MalformedLicense",
    "NotYetValid",
    "PayloadError",
    "SigningKeyError",
    "UnknownKeyId",
    "WrongMachine",
    "WrongProduct",
    "decode_unverified",
    "key_id",
    "key_ring",
    "new_license_id",
    "verify",
]
