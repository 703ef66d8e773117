"""Receiving one DingTalk HTTP callback: verify, decrypt, dispatch, answer encrypted success."""

import json
import logging
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from approval.callback_crypto import CallbackCrypto
from approval.exceptions import MalformedCallback, ReplayedNonce, StaleTimestamp
from backend.approvals.dispatcher import Dispatcher
from backend.approvals.events import INSTANCE_CHANGE, from_fields
from backend.storage import nonces
from backend.storage.database import Database

log = logging.getLogger(__name__)
MILLISECONDS = 10**11  # timestamps above this are in milliseconds (DingTalk sends both)


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
        signature = query.get("msg_signature") or query.get("signature") or ""
        timestamp = query.get("timestamp") or query.get("timeStamp") or ""
        nonce, encrypted = query.get("nonce") or "", _encrypted(body)
        if not (signature and timestamp and nonce):
            raise MalformedCallback("msg_signature, timestamp and nonce are required")
        self._check_time(timestamp)
        self.crypto.check_signature(signature, timestamp, nonce, encrypted)
        message = _event(self.crypto.decrypt(encrypted))
        key = f"{timestamp}:{nonce}"
        with self.database.transaction() as connection:
            if not nonces.first_sighting(connection, key, self.clock(), 2 * self.tolerance):
                raise ReplayedNonce(f"timestamp {timestamp} with nonce {nonce} was seen already")
        try:
            self._handle(message)
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
        if not timestamp.isdigit():
            raise MalformedCallback(f"timestamp {timestamp!r} is not a number")
        value = int(timestamp)
        seconds = value / 1000 if value > MILLISECONDS else value
        if abs(self.clock().timestamp() - seconds) > self.tolerance.total_seconds():
            raise StaleTimestamp(f"timestamp {timestamp} is outside the {self.tolerance} window")

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("EventType")
        if kind == "check_url":
            log.info("callback URL check answered")
            return
        if kind != INSTANCE_CHANGE:
            log.info("callback event %s acknowledged and ignored", kind)
            return
        event = from_fields(message, "http")
        if event is None:
            raise MalformedCallback("bpms_instance_change without processInstanceId or type")
        outcome = self.dispatcher.dispatch(event)
        log.info(
            "callback %s %s/%s: %s",
            event.instance_id,
            event.kind,
            event.result,
            outcome,
        )


def _encrypted(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        raise MalformedCallback("the body is not JSON") from None
    encrypted = data.get("encrypt") if isinstance(data, dict) else None
    if not isinstance(encrypted, str):
        raise MalformedCallback('the body must be {"encrypt": "..."}')
    return encrypted


def _event(plain: str) -> dict[str, Any]:
    try:
        message = json.loads(plain)
    except ValueError:
        raise MalformedCallback("the decrypted message is not JSON") from None
    if not isinstance(message, dict):
        raise MalformedCallback("the decrypted message is not a JSON object")
    return message
