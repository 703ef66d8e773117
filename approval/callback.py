"""Receiving one DingTalk HTTP callback: verify, decrypt, dispatch, answer encrypted success."""

import json
import logging
import re
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from approval.callback_crypto import CallbackCrypto
from approval.exceptions import MalformedCallback, ReplayedNonce, StaleTimestamp
from backend.approvals.dispatcher import Dispatcher
from backend.approvals.events import INSTANCE_CHANGE, ApprovalEvent, from_fields, unusable
from backend.storage import nonces
from backend.storage.database import Database

log = logging.getLogger(__name__)
MILLISECONDS = 10**11  # timestamps above this are in milliseconds (DingTalk sends both)
# ASCII digits only: "²".isdigit() is true and int("²") fails; 16 digits is past any clock.
STAMP = re.compile(r"[0-9]{1,16}")
NONCE_KEY_WIDTH = 100
"""Characters of the callback_nonces.key column, which holds "timestamp:nonce"."""


class CallbackReceiver:
    """Takes DingTalk's encrypted pushes for one app."""

    def __init__(
        self,
        crypto: CallbackCrypto,
        database: Database,
        dispatcher: Dispatcher,
        tolerance: int,
        clock: Callable[[], datetime],
    ) -> None:
        self.crypto, self.database, self.dispatcher = crypto, database, dispatcher
        self.tolerance, self.clock = timedelta(seconds=tolerance), clock

    def receive(self, query: Mapping[str, str], body: bytes) -> dict[str, str]:
        """Handle one push; the reply DingTalk expects, or a CallbackError."""
        signature, timestamp, nonce = _parameters(query)
        encrypted = _encrypted(body)
        self._check_time(timestamp)
        self.crypto.check_signature(signature, timestamp, nonce, encrypted)
        message = _event(self.crypto.decrypt(encrypted))
        event = _approval_event(message)  # refused here, before anything is stored
        key, now = f"{timestamp}:{nonce}", self.clock()
        with self.database.transaction() as connection:
            nonces.forget_before(connection, now - 2 * self.tolerance)
        with self.database.transaction() as connection:
            if not nonces.first_sighting(connection, key, now):
                raise ReplayedNonce(f"timestamp {timestamp} with nonce {nonce} was seen already")
        try:
            self._handle(message.get("EventType"), event)
        except Exception:
            with self.database.transaction() as connection:
                nonces.forget(connection, key)  # DingTalk's retry must be able to get through
            raise
        return self.reply("success")

    def reply(self, message: str) -> dict[str, str]:
        """An encrypted, signed answer."""
        timestamp, nonce = (
            str(int(self.clock().timestamp() * 1000)),
            secrets.token_urlsafe(6),
        )
        encrypted = self.crypto.encrypt(message)
        return {
            "msg_signature": self.crypto.signature(timestamp, nonce, encrypted),
            "timeStamp": timestamp,
            "nonce": nonce,
            "encrypt": encrypted,
        }

    def _check_time(self, timestamp: str) -> None:
        if not STAMP.fullmatch(timestamp):
            raise MalformedCallback(f"timestamp {timestamp[:40]!r} is not a number")
        value = int(timestamp)
        seconds = value / 1000 if value > MILLISECONDS else value
        if abs(self.clock().timestamp() - seconds) > self.tolerance.total_seconds():
            raise StaleTimestamp(f"timestamp {timestamp} is outside the {self.tolerance} window")

    def _handle(self, kind: object, event: ApprovalEvent | None) -> None:
        if kind == "check_url":
            log.info("callback URL check answered")
            return
        if event is None:
            log.info("callback event %.40r acknowledged and ignored", kind)
            return
        outcome = self.dispatcher.dispatch(event)
        log.info(
            "callback %s %s/%s: %s",
            event.instance_id,
            event.kind,
            event.result,
            outcome,
        )


def _parameters(query: Mapping[str, str]) -> tuple[str, str, str]:
    """The signature, timestamp and nonce, present and small enough to record."""
    signature = query.get("msg_signature") or query.get("signature") or ""
    timestamp = query.get("timestamp") or query.get("timeStamp") or ""
    nonce = query.get("nonce") or ""
    if not (signature and timestamp and nonce):
        raise MalformedCallback("msg_signature, timestamp and nonce are required")
    if len(timestamp) + 1 + len(nonce) > NONCE_KEY_WIDTH:
        raise MalformedCallback(
            f"the nonce is {len(nonce)} characters; with the timestamp it must fit in "
            f"{NONCE_KEY_WIDTH}"
        )
    return signature, timestamp, nonce


def _approval_event(message: dict[str, Any]) -> ApprovalEvent | None:
    """The instance change a message carries; None for other events; refused if unusable."""
    if message.get("EventType") != INSTANCE_CHANGE:
        return None
    event = from_fields(message, "http")
    if event is None:
        raise MalformedCallback(str(unusable(message)))
    return event


def _encrypted(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        raise MalformedCallback("the body is not JSON") from None
    except RecursionError:
        raise MalformedCallback(
            'the body nests too deeply; DingTalk sends {"encrypt": "..."}'
        ) from None
    encrypted = data.get("encrypt") if isinstance(data, dict) else None
    if not isinstance(encrypted, str):
        raise MalformedCallback('the body must be {"encrypt": "..."}')
    return encrypted


def _event(plain: str) -> dict[str, Any]:
    try:
        message = json.loads(plain)
    except ValueError:
        raise MalformedCallback("the decrypted message is not JSON") from None
    except RecursionError:
        raise MalformedCallback("the decrypted message nests too deeply to be an event") from None
    if not isinstance(message, dict):
        raise MalformedCallback("the decrypted message is not a JSON object")
    return message
