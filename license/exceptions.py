"""Errors of the license package: one tree, rooted in the verifier's LicenseError.

LicenseError (ValueError)      -- license.verifier, copied with it into products
 +-- MalformedLicense, UnknownKeyId, BadSignature,
 |   NotYetValid, Expired, WrongMachine, WrongProduct
 +-- SigningKeyError            the private key cannot be read or used
 +-- PayloadError               terms that cannot be signed canonically
 +-- ActivationCodeError        a code string that is not a valid activation code
"""

from license.verifier import (
    BadSignature,
    Expired,
    LicenseError,
    MalformedLicense,
    NotYetValid,
    UnknownKeyId,
    WrongMachine,
    WrongProduct,
)

__all__ = [
    "ActivationCodeError",
    "BadSignature",
    "Expired",
    "LicenseError",
    "MalformedLicense",
    "NotYetValid",
    "PayloadError",
    "SigningKeyError",
    "UnknownKeyId",
    "WrongMachine",
    "WrongProduct",
]


class SigningKeyError(LicenseError):
    """The signing key is missing, unreadable, of the wrong type or locked."""


class PayloadError(LicenseError):
    """The license terms hold a value that has no canonical JSON form."""


class ActivationCodeError(LicenseError):
    """The text is not a well-formed activation code (mistyped, cut short, bad check)."""
