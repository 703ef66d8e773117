"""DingTalk's callback encryption (钉钉回调加解密), exactly as the protocol defines it.

Signature: SHA-1 hex of the sorted concatenation of token, timestamp, nonce and the
ciphertext. Cipher: AES-256-CBC with key = base64(aes_key + "=") and IV = its first 16
bytes, over ``random16 || uint32_be(len(msg)) || msg || owner_key`` padded PKCS#7-style
to 32-byte blocks. The official Python sample counts characters instead of bytes; this
does not (Chinese titles are normal), and it bounds-checks the length before use.
"""

import base64
import binascii
import hashlib
import hmac
import secrets
import string
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from approval.exceptions import BadCiphertext, BadSignature, WrongOwner

BLOCK = 32
RANDOM_ALPHABET = string.ascii_letters + string.digits


class CallbackCrypto:
    """Signs, encrypts and decrypts callback messages for one app."""

    def __init__(self, token: str, aes_key: str, owner_key: str) -> None:
        if len(aes_key) != 43:
            raise ValueError("the callback aes_key (EncodingAESKey) has 43 characters")
        self.token, self.owner_key = token, owner_key
        self._key = base64.b64decode(aes_key + "=")

    def signature(self, timestamp: str, nonce: str, encrypted: str) -> str:
        """The msg_signature of a message."""
        joined = "".join(sorted([self.token, timestamp, nonce, encrypted]))
        return hashlib.sha1(joined.encode(), usedforsecurity=False).hexdigest()

    def check_signature(self, signature: str, timestamp: str, nonce: str, encrypted: str) -> None:
        """Raise BadSignature unless ``signature`` signs the message."""
        if not hmac.compare_digest(self.signature(timestamp, nonce, encrypted), signature.lower()):
            raise BadSignature("the callback's msg_signature does not match")

    def encrypt(self, message: str, random16: bytes | None = None) -> str:
        """The base64 ciphertext of ``message`` for this app's owner key."""
        prefix = random16 or "".join(secrets.choice(RANDOM_ALPHABET) for _ in range(16)).encode()
        body = message.encode()
        plain = prefix + struct.pack(">I", len(body)) + body + self.owner_key.encode()
        pad = BLOCK - len(plain) % BLOCK
        encryptor = self._cipher().encryptor()
        return base64.b64encode(
            encryptor.update(plain + bytes([pad]) * pad) + encryptor.finalize()
        ).decode()

    def decrypt(self, encrypted: str) -> str:
        """The message inside a ciphertext; BadCiphertext or WrongOwner if it is not ours."""
        try:
            data = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError):
            raise BadCiphertext("the callback's encrypt field is not base64") from None
        if not data or len(data) % 16:
            raise BadCiphertext("the callback's ciphertext is not whole AES blocks")
        decryptor = self._cipher().decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        return self._unwrap(plain)

    def _unwrap(self, plain: bytes) -> str:
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or len(plain) < 20 + pad:
            raise BadCiphertext("the callback's plaintext padding is wrong")
        body = plain[:-pad]
        (length,) = struct.unpack(">I", body[16:20])
        if 20 + length > len(body):
            raise BadCiphertext("the callback's plaintext is shorter than its length field says")
        if body[20 + length :] != self.owner_key.encode():
            raise WrongOwner("the callback was encrypted for another app key or corp id")
        try:
            return body[20 : 20 + length].decode()
        except UnicodeDecodeError:
            raise BadCiphertext("the callback's message is not UTF-8") from None

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))
