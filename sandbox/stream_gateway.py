"""DingTalk's Stream-mode gateway on loopback: connection tickets, a WebSocket, frames.

It follows the protocol reference: POST /v1.0/gateway/connections/open returns an
endpoint and a single-use ticket valid 90 s; events go out as EVENT frames whose
envelope is in the headers and whose data is a JSON string; an event not acknowledged
with SUCCESS (the protocol's shape, or the Python SDK's plain code 200) is sent again
with the same messageId. Every connection gets SYSTEM ping frames, whose answer must echo
the ping's opaque; a SYSTEM disconnect frame is followed, after a grace (10 s at
DingTalk), by the gateway closing the connection itself, whatever the client does. It runs
in its own threads, never on a client's event loop.
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
PING_EVERY = 30.0
"""Seconds between SYSTEM pings on a connection (DingTalk publishes no figure)."""
DISCONNECT_GRACE = 10.0
"""Seconds between a SYSTEM disconnect frame and the gateway closing the connection."""


@dataclass
class Delivery:
    """An event frame waiting for its acknowledgement."""

    frame: dict[str, Any]
    due: float
    attempts: int = 0


@dataclass
class StreamGateway:
    """Tickets, live connections, pings, and events until they are acknowledged."""

    app_key: str
    app_secret: str
    corp_id: str
    redeliver_after: float = 10.0
    ping_every: float = PING_EVERY
    disconnect_grace: float = DISCONNECT_GRACE
    clock: Callable[[], float] = time.time
    advertised: str | None = (
        None  # the endpoint clients are told (a test may put a proxy in between)
    )
    tickets: dict[str, float] = field(default_factory=dict)
    connections: list[ServerConnection] = field(default_factory=list)
    leaving: list[ServerConnection] = field(default_factory=list)
    """Connections told to disconnect: no more frames go to them."""
    waiting: dict[str, Delivery] = field(default_factory=dict)
    acks: list[dict[str, Any]] = field(default_factory=list)
    """The answers to EVENT frames: messageId, code, status."""
    pings: dict[str, str] = field(default_factory=dict)
    """The opaque of each ping sent, by messageId."""
    pongs: list[dict[str, Any]] = field(default_factory=list)
    """The answers to pings: messageId, code, and the opaque they echoed."""
    opens: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)
    stopped: threading.Event = field(default_factory=threading.Event)

    def start(self, host: str = "127.0.0.1") -> "StreamGateway":
        """Serve the WebSocket, the redelivery loop and the pings in background threads."""
        self._server = serve(self._connection, host, 0)
        self.endpoint = f"ws://{host}:{self._server.socket.getsockname()[1]}/connect"
        for name, loop in (
            ("stream-gateway", self._server.serve_forever),
            ("stream-redelivery", self._redeliver_forever),
            ("stream-pings", self._ping_forever),
        ):
            threading.Thread(target=loop, name=name, daemon=True).start()
        return self

    def stop(self) -> None:
        """Close every connection and stop serving."""
        self.stopped.set()
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
        headers = self._headers("*") | {
            "eventType": "bpms_instance_change",
            "eventId": secrets.token_hex(16),
            "eventCorpId": self.corp_id,
            "eventUnifiedAppId": self.app_key,
        }
        headers["eventBornTime"] = headers["time"]
        frame = {
            "specVersion": "1.0",
            "type": "EVENT",
            "headers": headers,
            "data": json.dumps(fields),
        }
        with self.lock:
            self.waiting[headers["messageId"]] = Delivery(frame, due=0.0)
        self._send_due()

    def ping_all(self) -> None:
        """Send a SYSTEM ping, with a fresh opaque, to every connection."""
        with self.lock:
            live = [c for c in self.connections if c not in self.leaving]
        for connection in live:
            headers, opaque = self._headers("ping"), str(uuid.uuid4())
            with self.lock:
                self.pings[headers["messageId"]] = opaque
            self._send(connection, self._system(headers, {"opaque": opaque}))

    def disconnect_all(self) -> None:
        """Tell every client to reconnect, as the gateway does when a connection ages; close
        each connection after the grace, whether or not the client closed it."""
        with self.lock:
            told = [c for c in self.connections if c not in self.leaving]
            self.leaving.extend(told)
        for connection in told:
            frame = self._system(self._headers("disconnect"), {"reason": "connection is expired"})
            self._send(connection, frame)
            closing = threading.Timer(self.disconnect_grace, self._close, args=(connection,))
            closing.daemon = True
            closing.start()

    def _close(self, connection: ServerConnection) -> None:
        connection.close(1000, "connection is expired")

    def _headers(self, topic: str) -> dict[str, str]:
        return {
            "topic": topic,
            "messageId": secrets.token_hex(12),
            "contentType": "application/json",
            "time": str(int(self.clock() * 1000)),
        }

    @staticmethod
    def _system(headers: dict[str, str], data: dict[str, str]) -> dict[str, Any]:
        return {
            "specVersion": "1.0",
            "type": "SYSTEM",
            "headers": headers,
            "data": json.dumps(data),
        }

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
                self._answered(json.loads(raw))
        except ConnectionClosed:
            pass
        finally:
            with self.lock:
                self.connections.remove(connection)
                if connection in self.leaving:
                    self.leaving.remove(connection)

    def _answered(self, answer: dict[str, Any]) -> None:
        message_id = answer.get("headers", {}).get("messageId")
        try:
            data = json.loads(answer.get("data") or "{}")
        except ValueError:
            data = None
        data = data if isinstance(data, dict) else {}
        with self.lock:
            if message_id in self.pings:
                self.pongs.append(
                    {
                        "messageId": message_id,
                        "code": answer.get("code"),
                        "opaque": data.get("opaque"),
                    }
                )
                return
            status = data.get("status")
            self.acks.append(
                {"messageId": message_id, "code": answer.get("code"), "status": status}
            )
            # The protocol's ack says SUCCESS; the Python SDK's default says only code 200.
            if answer.get("code") == 200 and status in ("SUCCESS", None):
                self.waiting.pop(message_id, None)
            elif message_id in self.waiting:
                self.waiting[message_id].due = self.clock() + self.redeliver_after

    def _send_due(self) -> None:
        with self.lock:
            live = [c for c in self.connections if c not in self.leaving]
            if not live:
                return
            due = [d for d in self.waiting.values() if d.due <= self.clock()]
            for delivery in due:
                delivery.attempts += 1
                delivery.due = self.clock() + self.redeliver_after
            target = secrets.choice(live)  # one connection, chosen at random, as DingTalk does
        for delivery in due:
            self._send(target, delivery.frame)

    def _send(self, connection: ServerConnection, frame: dict[str, Any]) -> None:
        try:
            connection.send(json.dumps(frame))
        except ConnectionClosed:
            log.info("stream gateway: a connection closed before it got a frame")

    def _redeliver_forever(self) -> None:
        while not self.stopped.wait(min(self.redeliver_after / 4, 1.0)):
            self._send_due()

    def _ping_forever(self) -> None:
        pinged = self.clock()
        # The interval is read each round: a test may shorten it on a running gateway.
        while not self.stopped.wait(min(self.ping_every, 0.5)):
            if self.clock() - pinged >= self.ping_every:
                self.ping_all()
                pinged = self.clock()
