"""Ed25519 signing keys: generate, store as PKCS#8 PEM, load from text or a file."""

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from license.exceptions import SigningKeyError
from license.verifier import key_id

__all__ = ["generate", "key_id", "load_private_key", "private_pem", "public_pem"]

PEM_MARKER = "-----BEGIN"


def generate() -> Ed25519PrivateKey:
    """A new random signing key."""
    return Ed25519PrivateKey.generate()


def private_pem(key: Ed25519PrivateKey, passphrase: bytes | None = None) -> bytes:
    """The key as PKCS#8 PEM, encrypted with the passphrase when one is given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def public_pem(key: Ed25519PublicKey) -> bytes:
    """The public half as SubjectPublicKeyInfo PEM, the form products ship."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(source: str, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    """Load a signing key from PEM text or from the path of a PEM file."""
    pem = source.encode("ascii") if PEM_MARKER in source else _read(Path(source))
    try:
        key = serialization.load_pem_private_key(pem, password=passphrase or None)
    except TypeError:  # a passphrase was needed, or given for a plain key
        state = "has no passphrase: give none" if passphrase else "is locked: give its passphrase"
        raise SigningKeyError(f"the signing key {_name(source)} {state}") from None
    except ValueError:
        raise SigningKeyError(
            f"the signing key {_name(source)} cannot be read: not a PEM private key, "
            "or the passphrase is wrong"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(
            f"the signing key {_name(source)} is {type(key).__name__}, not Ed25519; "
            "make one with `dingpass license keygen`"
        )
    return key


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise SigningKeyError(
            f"the signing key file {path} cannot be read ({err.strerror}); "
            "set it to PEM text or the path of a PEM file"
        ) from None


def _name(source: str) -> str:
    return "(PEM text)" if PEM_MARKER in source else source
