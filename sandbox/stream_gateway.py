"""DingTalk's Stream-mode gateway on loopback: connection tickets, a WebSocket, event frames.

It follows the protocol reference: POST /v1.0/gateway/connections/open returns an
endpoint and a single-use ticket valid 90 s; events go out as EVENT frames whose
envelope is in the headers and whose data is a JSON string; an event not acknowledged
with SUCCESS (the protocol's shape, or the Python SDK's plain code 200) is sent again
with the same messageId. It runs in its own threads, never on a client's event loop.
"""

import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

log = logging.getLogger(__name__)
TICKET_SECONDS = 90


@dataclass
class Delivery:
    """An event frame waiting for its acknowledgement."""

    frame: dict[str, Any]
    due: float
    attempts: int = 0


@dataclass
class StreamGateway:
    """Tickets, live connections, and events until they are acknowledged."""

    app_key: str
    app_secret: str
    corp_id: str
    redeliver_after: float = 10.0
    clock: Callable[[], float] = time.time
    advertised: str | None = (
        None  # the endpoint clients are told (a test may put a proxy in between)
    )
    tickets: dict[str, float] = field(default_factory=dict)
    connections: list[ServerConnection] = field(default_factory=list)
    waiting: dict[str, Delivery] = field(default_factory=dict)
    acks: list[dict[str, Any]] = field(default_factory=list)
    opens: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)

    def start(self, host: str = "127.0.0.1") -> "StreamGateway":
        """Serve the WebSocket and the redelivery loop in background threads."""
        self._server = serve(self._connection, host, 0)
        self.endpoint = f"ws://{host}:{self._server.socket.getsockname()[1]}/connect"
        threading.Thread(
            target=self._server.serve_forever, name="stream-gateway", daemon=True
        ).start()
        threading.Thread(
            target=self._redeliver_forever, name="stream-redelivery", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        """Close every connection and stop serving."""
        self._server.shutdown()

    def open(self, body: dict[str, Any]) -> dict[str, str] | None:
        """Answer a connection-open request: endpoint and ticket, or None for bad credentials."""
        if (body.get("clientId"), body.get("clientSecret")) != (
            self.app_key,
            self.app_secret,
        ):
            return None
        ticket = str(uuid.uuid4())
        with self.lock:
            self.tickets[ticket] = self.clock() + TICKET_SECONDS
            self.opens += 1
        return {"endpoint": self.advertised or self.endpoint, "ticket": ticket}

    def publish(self, fields: dict[str, Any]) -> None:
        """Send a bpms_instance_change event to one connection (or when one connects)."""
        now_ms = str(int(self.clock() * 1000))
        headers = {
            "topic": "*",
            "messageId": secrets.token_hex(12),
            "contentType": "application/json",
            "time": now_ms,
            "eventType": "bpms_instance_change",
            "eventId": secrets.token_hex(16),
            "eventCorpId": self.corp_id,
            "eventBornTime": now_ms,
            "eventUnifiedAppId": self.app_key,
        }
        frame = {
            "specVersion": "1.0",
            "type": "EVENT",
            "headers": headers,
            "data": json.dumps(fields),
        }
        with self.lock:
            self.waiting[headers["messageId"]] = Delivery(frame, due=0.0)
        self._send_due()

    def disconnect_all(self) -> None:
        """Tell every client to reconnect, as the gateway does when a connection ages."""
        frame = {
            "specVersion": "1.0",
            "type": "SYSTEM",
            "data": json.dumps({"reason": "connection is expired"}),
            "headers": {
                "topic": "disconnect",
                "messageId": secrets.token_hex(12),
                "contentType": "application/json",
                "time": str(int(self.clock() * 1000)),
            },
        }
        for connection in list(self.connections):
            self._send(connection, frame)

    def _connection(self, connection: ServerConnection) -> None:
        ticket = parse_qs(
            urlsplit(connection.request.path if connection.request else "").query
        ).get("ticket", [""])[0]
        with self.lock:
            expires = self.tickets.pop(ticket, 0)  # single use
        if expires < self.clock():
            connection.close(4001, "invalid or used ticket")
            return
        with self.lock:
            self.connections.append(connection)
        self._send_due()
        try:
            for raw in connection:
                self._acknowledged(json.loads(raw))
        except ConnectionClosed:
            pass
        finally:
            with self.lock:
                self.connections.remove(connection)

    def _acknowledged(self, ack: dict[str, Any]) -> None:
        message_id = ack.get("headers", {}).get("messageId")
        data = json.loads(ack.get("data") or "{}")
        status = data.get("status") if isinstance(data, dict) else None
        with self.lock:
            self.acks.append({"messageId": message_id, "code": ack.get("code"), "status": status})
            # The protocol's ack says SUCCESS; the Python SDK's default says only code 200.
            if ack.get("code") == 200 and status in ("SUCCESS", None):
                self.waiting.pop(message_id, None)
            elif message_id in self.waiting:
                self.waiting[message_id].due = self.clock() + self.redeliver_after

    def _send_due(self) -> None:
        with self.lock:
            if not self.connections:
                return
            due = [d for d in self.waiting.values() if d.due <= self.clock()]
            for delivery in due:
                delivery.attempts += 1
                delivery.due = self.clock() + self.redeliver_after
            target = secrets.choice(
                self.connections
            )  # one connection, chosen at random, as DingTalk does
        for delivery in due:
            self._send(target, delivery.frame)

    def _send(self, connection: ServerConnection, frame: dict[str, Any]) -> None:
        try:
            connection.send(json.dumps(frame))
        except ConnectionClosed:
            log.info("stream gateway: a connection closed before it got a frame")

    def _redeliver_forever(self) -> None:
        while True:
            time.sleep(min(self.redeliver_after / 4, 1.0))
            self._send_due()
