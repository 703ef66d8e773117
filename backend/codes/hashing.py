"""The keyed hash activation codes are stored and looked up by, and its key."""

import hashlib
import hmac
import secrets
from pathlib import Path

from backend import defaults
from backend.config import Config
from backend.exceptions import ConfigError
from backend.license_keys import write_private

MIN_KEY_LENGTH = 32


def hash_key(config: Config) -> bytes:
    """CODE_HASH_KEY; in development, a key made in the var folder on first use."""
    if config.code_hash_key:
        if len(config.code_hash_key) < MIN_KEY_LENGTH:
            raise ConfigError(
                f"CODE_HASH_KEY has {len(config.code_hash_key)} characters; it needs at least "
                f"{MIN_KEY_LENGTH}: `python -c 'import secrets; print(secrets.token_hex(32))'`"
            )
        return config.code_hash_key.encode()
    if config.production:
        raise ConfigError(
            "CODE_HASH_KEY is not set: activation codes are stored hashed with it. Make one with "
            "`python -c 'import secrets; print(secrets.token_hex(32))'` and keep it: another key "
            "makes every stored code unknown"
        )
    return _development_key(config.var_dir / defaults.DEV_CODE_KEY_FILE)


def code_hash(key: bytes, code: str) -> str:
    """The hash of ``code`` in its canonical form (license.codes.parse gives it): hex."""
    return hmac.new(key, code.encode("ascii"), hashlib.sha256).hexdigest()


def _development_key(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            write_private(path, secrets.token_hex(32).encode())
        except FileExistsError:  # another process made it meanwhile: use that one
            pass
    return path.read_bytes().strip()
