"""The license signing key and public key ring, as the configuration says."""

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from backend import defaults
from backend.config import Config
from backend.exceptions import ConfigError
from license import Issuer, SigningKeyError, key_ring
from license.keys import generate, load_private_key, private_pem, public_pem

log = logging.getLogger(__name__)


def signing_key(config: Config) -> Ed25519PrivateKey:
    """The configured signing key; in development, a local key made on first use."""
    if config.license_signing_key:
        passphrase = config.license_signing_key_passphrase
        try:
            return load_private_key(
                config.license_signing_key, passphrase.encode() if passphrase else None
            )
        except SigningKeyError as err:
            raise ConfigError(f"LICENSE_SIGNING_KEY: {err}") from None
    if config.production:
        raise ConfigError(
            "LICENSE_SIGNING_KEY is not set: make a key with `dingpass license keygen --out "
            "signing-key.pem` and set LICENSE_SIGNING_KEY to its path or its PEM text"
        )
    return _development_key(dev_key_path(config))


def issuer(config: Config) -> Issuer:
    """An issuer that signs with the configured key."""
    return Issuer(signing_key(config))


def public_keys(config: Config) -> dict[str, Ed25519PublicKey]:
    """The key ring licenses are checked against: the signing key's and earlier keys'.

    Unlike signing, checking never makes the development key: it is used if it exists.
    """
    ring = key_ring(_read_public(path) for path in config.license_public_keys)
    current = _current_key(config)
    if current is not None:
        ring.update(key_ring([current.public_key()]))
    if not ring:
        raise ConfigError(
            "no public keys to check licenses with: set LICENSE_SIGNING_KEY or "
            "LICENSE_PUBLIC_KEYS (or pass --public-key)"
        )
    return ring


def _current_key(config: Config) -> Ed25519PrivateKey | None:
    if config.license_signing_key or (config.production and not config.license_public_keys):
        return signing_key(config)
    path = dev_key_path(config)
    return load_private_key(str(path)) if not config.production and path.exists() else None


def dev_key_path(config: Config) -> Path:
    """Where the development signing key lives."""
    return config.var_dir / defaults.DEV_SIGNING_KEY_FILE


def _development_key(path: Path) -> Ed25519PrivateKey:
    if path.exists():
        key = load_private_key(str(path))
    else:
        key = _make_development_key(path)
    public_path = path.with_suffix(".pub")
    if not public_path.exists():  # also for a key made before the public half was written
        _write_whole(public_path, public_pem(key.public_key()), 0o644, os.replace)
    return key


def _make_development_key(path: Path) -> Ed25519PrivateKey:
    log.warning("no LICENSE_SIGNING_KEY set: signing with a development key made at %s", path)
    key = generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_private(path, private_pem(key))
    except FileExistsError:  # another process made it in the meantime: sign with that one
        return load_private_key(str(path))
    return key


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file readable by its owner only, refusing to replace an existing one.

    Raises FileExistsError if ``path`` exists; a reader never sees the file half written.
    """
    _write_whole(path, data, 0o600, os.link)


def _write_whole(path: Path, data: bytes, mode: int, put: Callable[[str, Path], None]) -> None:
    """Write ``data`` beside ``path`` first, then ``put`` it in place whole (link or replace)."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        put(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _read_public(path: Path) -> Ed25519PublicKey:
    try:
        (key,) = key_ring([path.read_bytes()]).values()
    except OSError as err:
        raise ConfigError(f"LICENSE_PUBLIC_KEYS: cannot read {path} ({err.strerror})") from None
    except (ValueError, TypeError) as err:
        raise ConfigError(
            f"LICENSE_PUBLIC_KEYS: {path} is not an Ed25519 public key PEM ({err})"
        ) from None
    return key
