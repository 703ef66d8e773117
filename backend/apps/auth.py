"""Which API application sent a request: its API Gateway signature checked, and used once."""

import hashlib
import hmac
import math
import re
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import Connection

from backend.apps import signature, store
from backend.apps.errors import (
    AppDisabled,
    BadTimestamp,
    ContentMd5Mismatch,
    ContentMd5Missing,
    NonceReplayed,
    SignatureMismatch,
    TimestampExpired,
    UnknownApp,
)
from backend.apps.signature import Headers, SignedRequest
from backend.apps.store import ApiApp
from backend.storage import nonces

WINDOW = timedelta(minutes=15)
"""How far X-Ca-Timestamp may be from our clock, either way (API Gateway's own window)."""
# ASCII digits only: "²".isdigit() is true and int("²") fails; 16 digits is past any clock.
STAMP = re.compile(r"[0-9]{1,16}")
NONCE_KEY_WIDTH = 100
"""Characters of the callback_nonces.key column, which holds "app:KEY:NONCE"."""
NONCE_PREFIX = nonces.APP_PREFIX
"""Marks the nonces of applications in callback_nonces (DingTalk's are "timestamp:nonce")."""


def authenticate(
    connection: Connection,
    method: str,
    path: str,
    query_string: str | bytes,
    headers: Headers,
    body: bytes,
    now: datetime,
    window: timedelta = WINDOW,
) -> ApiApp:
    """The application that signed this request (without its secret), its nonce now spent.

    ``path`` is the path as the client sent it, ``query_string`` the raw text after ``?``.
    Raises an AppAuthError (see backend.apps.errors) for each way a request can fail. The
    nonce is recorded in ``connection``'s transaction, and only once the signature holds: a
    request nobody signed cannot spend a nonce, and a rolled-back transaction frees it for
    the caller's retry. Call forget_old_nonces before, in a transaction of its own.
    """
    signed = signature.read(method, path, query_string, headers, body)
    _check_time(signed.timestamp, now, window)
    app = store.by_key(connection, signed.app_key)
    if app is None or app.secret is None:
        raise UnknownApp(signed.app_key)
    _check_signature(signed, app.secret)
    if not app.enabled:  # told only to whoever holds the secret
        raise AppDisabled(app.app_key)
    _check_body(signed, body)
    if not nonces.first_sighting(connection, nonce_key(app.app_key, signed.nonce), now):
        raise NonceReplayed()
    return replace(app, secret=None)


def forget_old_nonces(connection: Connection, now: datetime, window: timedelta = WINDOW) -> None:
    """Forget the nonces no request can be replayed with any more.

    A nonce matters while a request with it could still be fresh: its timestamp was within
    ``window`` of its first sighting and may stay within it for another ``window``. Run this
    in a transaction of its own, as approval/callback.py does, before authenticate's: a range
    delete and an insert in one transaction deadlock on MySQL (backend.storage.nonces).
    """
    nonces.forget_before(connection, now - 2 * window, apps=True)


def nonce_key(app_key: str, nonce: str) -> str:
    """The key a nonce is recorded under: per application, hashed when it would not fit."""
    key = f"{NONCE_PREFIX}{app_key}:{nonce}"
    if len(key) <= NONCE_KEY_WIDTH:
        return key
    return NONCE_PREFIX + hashlib.sha256(f"{app_key}:{nonce}".encode()).hexdigest()


def _check_time(timestamp: str, now: datetime, window: timedelta) -> None:
    if not STAMP.fullmatch(timestamp):
        raise BadTimestamp(timestamp)
    server_ms = int(now.timestamp() * 1000)
    if abs(server_ms - int(timestamp)) > window / timedelta(milliseconds=1):
        minutes = math.ceil(window / timedelta(minutes=1))
        raise TimestampExpired(int(timestamp), server_ms, minutes)


def _check_signature(signed: SignedRequest, secret: str) -> None:
    expected = signature.sign(secret, signed.string_to_sign, signed.method)
    given = signed.signature.encode("utf-8", "replace")
    if not hmac.compare_digest(expected.encode("ascii"), given):
        raise SignatureMismatch(signed.string_to_sign)


def _check_body(signed: SignedRequest, body: bytes) -> None:
    """The body is the one signed: a form by its fields, any other by its Content-MD5.

    API Gateway takes a body without Content-MD5 unchecked; dingpass does not, since its
    bodies create cloud resources. The official SDKs send it with every such body.
    """
    actual = signature.content_md5(body)
    if signed.content_md5 is None:
        if body and not signed.form:
            raise ContentMd5Missing(actual)
        return
    if signed.content_md5 != actual:
        raise ContentMd5Mismatch(signed.content_md5, actual)
