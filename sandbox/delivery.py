"""Event delivery as DingTalk does it: an encrypted HTTP push, retried at +10 s and +30 s,
then kept for the failed-callback list. Also hands events to Stream-mode connections."""

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
from sandbox.state import Instance, SandboxState
from sandbox.stream_gateway import StreamGateway

log = logging.getLogger(__name__)
RETRY_DELAYS = (10.0, 30.0)


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
        copies = 2 if self.state.faults.take("duplicate_events") else 1
        for _ in range(copies):
            if self.gateway is not None:
                self.gateway.publish(fields)
            if self.target is not None:
                threading.Thread(
                    target=self._push_with_retries, args=(fields,), daemon=True
                ).start()

    def _push_with_retries(self, fields: dict[str, Any]) -> None:
        for delay in (0.0, *self.retry_delays):
            time.sleep(delay)
            if self.push(fields):
                return
        with self.state.lock:
            self.state.failed_events.append(fields)
        log.info(
            "sandbox gave up pushing %s; it is on the failed-callback list",
            fields["processInstanceId"],
        )

    def push(self, fields: dict[str, Any]) -> bool:
        """One encrypted push; True if the receiver answered encrypted success."""
        if self.target is None:
            return False
        message = {
            "EventType": "bpms_instance_change",
            "EventTime": int(self.clock() * 1000),
            "CorpId": self.corp_id,
            "eventId": secrets.token_hex(16),
            **fields,
        }
        encrypted = callback_crypto.seal(
            self.target.aes_key,
            self.target.owner_key,
            json.dumps(message, ensure_ascii=False),
        )
        timestamp, nonce = str(int(self.clock() * 1000)), secrets.token_urlsafe(6)[:8]
        signature = callback_crypto.msg_signature(self.target.token, timestamp, nonce, encrypted)
        query = {
            "signature": signature,
            "msg_signature": signature,
            "timestamp": timestamp,
            "nonce": nonce,
        }
        try:
            answer = self.session.post(
                self.target.url, params=query, json={"encrypt": encrypted}, timeout=1.5
            )
            reply = answer.json()
            return (
                answer.ok
                and callback_crypto.unseal(
                    self.target.aes_key, self.target.owner_key, reply["encrypt"]
                )
                == "success"
            )
        except (requests.RequestException, ValueError, KeyError) as err:
            log.info("sandbox push of %s failed: %s", fields["processInstanceId"], err)
            return False
