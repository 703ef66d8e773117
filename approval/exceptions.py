"""Errors of a DingTalk event that cannot be taken, each answered with a 4xx and logged.

CallbackError (ValueError)
 +-- MalformedCallback   400  missing parameters, body not JSON, plaintext not an event
 +-- BadSignature        403  msg_signature does not match token, timestamp, nonce, body
 +-- BadCiphertext       403  does not decrypt to a well-formed plaintext
 +-- WrongOwner          403  encrypted for another app key / corp id
 +-- StaleTimestamp      403  outside the tolerance window
 +-- ReplayedNonce       409  this timestamp and nonce were seen already
"""


class CallbackError(ValueError):
    """A DingTalk callback request that is refused."""

    status = 400


class MalformedCallback(CallbackError):
    """Missing parameters, a body that is not JSON, or a plaintext that is not an event."""


class BadSignature(CallbackError):
    """The signature does not match."""

    status = 403


class BadCiphertext(CallbackError):
    """The ciphertext does not decrypt to a well-formed plaintext."""

    status = 403


class WrongOwner(CallbackError):
    """The plaintext was encrypted for another app key or corp id."""

    status = 403


class StaleTimestamp(CallbackError):
    """The timestamp is outside the tolerance window."""

    status = 403


class ReplayedNonce(CallbackError):
    """This timestamp and nonce were seen already."""

    status = 409
