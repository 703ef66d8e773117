"""Event delivery as DingTalk does it: an encrypted HTTP push, retried at +10 s and +30 s,
then kept for the failed-callback list. Also hands events to Stream-mode connections.

A retry is a new HTTP request: signed again with a fresh timestamp and nonce (the protocol
reference documents no reuse of a push's timestamp or nonce); what stays the same is the
event, and its eventId in the encrypted body. Every attempt is kept in ``state.pushes``.
"""

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from sandbox import callback_crypto
from sandbox.state import Instance, Push, SandboxState
from sandbox.stream_gateway import StreamGateway

log = logging.getLogger(__name__)
RETRY_DELAYS = (10.0, 30.0)
"""Seconds after a failed push that DingTalk tries again: after the first, after the second."""
ANSWER_SECONDS = 1.5
"""How long DingTalk waits for a callback's answer."""
ENVELOPE = ("EventType", "EventTime", "CorpId", "eventId")
"""The HTTP push's own fields; the failed-callback list keeps the event's fields only."""
Answer = tuple[int | None, bool]


@dataclass(frozen=True)
class CallbackTarget:
    """Where and how HTTP pushes go."""

    url: str
    token: str
    aes_key: str
    owner_key: str


def instance_event(instance: Instance, corp_id: str) -> dict[str, Any]:
    """The bpms_instance_change fields of a finished or terminated instance."""
    fields: dict[str, Any] = {
        "processInstanceId": instance.id,
        "processCode": instance.process_code,
        "type": "terminate" if instance.status == "TERMINATED" else "finish",
        "title": instance.title(),
        "staffId": instance.originator,
        "createTime": instance.created_ms,
        "finishTime": instance.finished_ms,
        "businessId": instance.id.split("-")[1],
        "url": f"https://aflow.dingtalk.com/dingtalk/mobile/homepage.htm#/approval?procInstId={instance.id}",
        "corpId": corp_id,
    }
    if instance.result:
        fields["result"] = instance.result
    return fields


class Deliverer:
    """Pushes events to the HTTP callback and to Stream connections, with DingTalk's retries."""

    def __init__(
        self,
        state: SandboxState,
        corp_id: str,
        target: CallbackTarget | None,
        retry_scale: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state, self.corp_id, self.target = state, corp_id, target
        self.retry_delays = tuple(delay * retry_scale for delay in RETRY_DELAYS)
        self.clock = clock
        self.gateway: StreamGateway | None = None
        self.session = requests.Session()
        self.session.trust_env = False

    def publish(self, instance: Instance) -> None:
        """Deliver the event of a decided instance (or drop it, or send it twice, if told to)."""
        fields = instance_event(instance, self.corp_id)
        if self.state.faults.take("drop_events"):
            log.info("sandbox dropped the event of %s, as asked", instance.id)
            return
        envelope = {
            "EventType": "bpms_instance_change",
            "EventTime": int(self.clock() * 1000),
            "CorpId": self.corp_id,
            "eventId": secrets.token_hex(16),
        }
        copies = 2 if self.state.faults.take("duplicate_events") else 1
        for _ in range(copies):  # a duplicate is the same event again, eventId and all
            if self.gateway is not None:
                self.gateway.publish(fields)
            if self.target is not None:
                threading.Thread(
                    target=self._push_with_retries, args=({**envelope, **fields},), daemon=True
                ).start()

    def _push_with_retries(self, message: dict[str, Any]) -> None:
        for delay in (0.0, *self.retry_delays):
            time.sleep(delay)
            if self.push(message):
                return
        with self.state.lock:
            self.state.failed_events.append({k: v for k, v in message.items() if k not in ENVELOPE})
        log.info(
            "sandbox gave up pushing %s; it is on the failed-callback list",
            message["processInstanceId"],
        )

    def push(self, message: dict[str, Any]) -> bool:
        """One encrypted, signed push of ``message``; True if the receiver answered success."""
        if self.target is None:
            return False
        encrypted = callback_crypto.seal(
            self.target.aes_key,
            self.target.owner_key,
            json.dumps(message, ensure_ascii=False),
        )
        sent_at = self.clock()
        timestamp, nonce = str(int(sent_at * 1000)), secrets.token_urlsafe(6)[:8]
        signature = callback_crypto.msg_signature(self.target.token, timestamp, nonce, encrypted)
        query = {
            "signature": signature,
            "msg_signature": signature,
            "timestamp": timestamp,
            "nonce": nonce,
        }
        instance_id = message["processInstanceId"]
        status, success = self._send(query, encrypted, instance_id)
        push = Push(instance_id, message["eventId"], sent_at, timestamp, nonce, status, success)
        with self.state.lock:
            self.state.pushes.append(push)
        return success

    def _send(self, query: dict[str, str], encrypted: str, instance_id: str) -> Answer:
        """The HTTP status the push got (None: no answer came), and whether it said success."""
        assert self.target is not None  # noqa: S101 -- push() checked it
        if self.state.faults.take("callback_unavailable"):
            log.info("sandbox push of %s: the callback's front door answers 503", instance_id)
            return 503, False
        try:
            answer = self.session.post(
                self.target.url, params=query, json={"encrypt": encrypted}, timeout=ANSWER_SECONDS
            )
        except requests.RequestException as err:
            log.info("sandbox push of %s failed: %s", instance_id, err)
            return None, False
        if self.state.faults.take("callback_answer_lost"):
            log.info("sandbox push of %s: its answer is lost, as asked", instance_id)
            return None, False
        return answer.status_code, answer.ok and self._says_success(answer, instance_id)

    def _says_success(self, answer: requests.Response, instance_id: str) -> bool:
        assert self.target is not None  # noqa: S101 -- push() checked it
        try:
            plain = callback_crypto.unseal(
                self.target.aes_key, self.target.owner_key, answer.json()["encrypt"]
            )
        except (ValueError, KeyError, TypeError) as err:
            log.info(
                "sandbox push of %s: the answer is not encrypted success: %s", instance_id, err
            )
            return False
        return plain == "success"
