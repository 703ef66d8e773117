"""The callback crypto as DingTalk's side does it, written from the protocol reference.

Independent of approval/callback_crypto.py on purpose: here padding is cryptography's
PKCS7 at a 256-bit block, and the layout is parsed with memoryview slicing.
"""

import base64
import hashlib
import os

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def aes_key_bytes(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey."""
    return base64.b64decode(encoding_aes_key + "=")


def msg_signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """SHA-1 hex over the four strings, sorted and joined."""
    parts = sorted((token, timestamp, nonce, encrypt))
    return hashlib.sha1("".join(parts).encode("utf-8"), usedforsecurity=False).hexdigest()


def seal(encoding_aes_key: str, owner: str, message: str, prefix: bytes | None = None) -> str:
    """Encrypt ``message`` the way DingTalk pushes it."""
    key = aes_key_bytes(encoding_aes_key)
    raw = message.encode("utf-8")
    prefix = (
        prefix if prefix is not None else base64.b32encode(os.urandom(10)).decode()[:16].encode()
    )
    layout = b"".join((prefix, len(raw).to_bytes(4, "big"), raw, owner.encode("ascii")))
    padder = padding.PKCS7(256).padder()
    padded = padder.update(layout) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode("ascii")


def unseal(encoding_aes_key: str, owner: str, encrypt: str) -> str:
    """Decrypt a reply; raise ValueError if it is not for ``owner``."""
    key = aes_key_bytes(encoding_aes_key)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    padded = decryptor.update(base64.b64decode(encrypt)) + decryptor.finalize()
    unpadder = padding.PKCS7(256).unpadder()
    layout = memoryview(unpadder.update(padded) + unpadder.finalize())
    size = int.from_bytes(layout[16:20], "big")
    if bytes(layout[20 + size :]).decode("ascii") != owner:
        raise ValueError("reply encrypted for another owner")
    return bytes(layout[20 : 20 + size]).decode("utf-8")
