"""Stream mode: the official dingtalk-stream client, with the lifecycle a service needs.

The SDK (0.24.3) connects and routes frames; this adds what it lacks: the protocol's
acknowledgement ({"status": "SUCCESS" | "LATER"}, sent only after the event is
committed, where the SDK echoes the event back), a timeout on opening a connection,
reconnecting with backoff, a watchdog that pings an idle connection and drops it when
no pong comes (the SDK never checks), and a stop() that really stops.
"""

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_plus

import dingtalk_stream
import requests
import websockets
import websockets.exceptions  # imported explicitly: the SDK's lazy use of it is fragile
from dingtalk_stream import AckMessage
from dingtalk_stream.frames import Headers

from backend.approvals.events import INSTANCE_CHANGE, from_fields, unusable

log = logging.getLogger(__name__)
OPEN_TIMEOUT = 10.0
IDLE_SECONDS = 60.0
"""With no frame for this long, the connection is pinged; no pong within PONG_SECONDS: dead."""
PONG_SECONDS = 10.0
CLOSE_TIMEOUT = 1.0
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 60.0
SUCCESS, LATER = "SUCCESS", "LATER"


class ApprovalEventHandler(dingtalk_stream.EventHandler):  # type: ignore[misc]
    """Hands approval events to the dispatcher, and acknowledges only once it committed."""

    def __init__(self, dispatch: Callable[[Any], object]) -> None:
        super().__init__()
        self.dispatch = dispatch

    async def raw_process(self, event_message: Any) -> AckMessage:
        """The protocol's acknowledgement for one event frame (the SDK echoes the event instead)."""
        status = await self._handle(event_message)
        ack = AckMessage()
        ack.code = AckMessage.STATUS_OK
        ack.headers.message_id = event_message.headers.message_id
        ack.headers.content_type = Headers.CONTENT_TYPE_APPLICATION_JSON
        ack.message = "OK" if status == SUCCESS else "later"
        ack.data = {"status": status}
        return ack

    async def _handle(self, event_message: Any) -> str:
        if event_message.headers.event_type != INSTANCE_CHANGE:
            return SUCCESS
        fields = event_message.data if isinstance(event_message.data, dict) else {}
        event = from_fields(fields, "stream")
        if event is None:
            log.warning("stream event refused, nothing recorded: %s", unusable(fields))
            return SUCCESS  # sending it again would not make it readable
        try:
            outcome = await asyncio.to_thread(self.dispatch, event)
        except Exception:
            log.exception(
                "stream event %s not recorded; asking DingTalk to send it later",
                event.instance_id,
            )
            return LATER
        log.info("stream %s %s/%s: %s", event.instance_id, event.kind, event.result, outcome)
        return SUCCESS


class StreamWorker(dingtalk_stream.DingTalkStreamClient):  # type: ignore[misc]
    """The SDK's client, reconnecting by itself, watching for dead links, stoppable."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        open_url: str,
        handler: ApprovalEventHandler,
        idle_seconds: float = IDLE_SECONDS,
        pong_seconds: float = PONG_SECONDS,
    ) -> None:
        super().__init__(dingtalk_stream.Credential(client_id, client_secret), logger=log)
        self.register_all_event_handler(handler)
        self.open_url, self.idle_seconds, self.pong_seconds = (
            open_url,
            idle_seconds,
            pong_seconds,
        )
        self.connections = 0
        self._stopping: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def open_connection(self) -> dict[str, str] | None:
        """Ask the gateway for an endpoint and ticket (the SDK's call, with a timeout)."""
        body = {
            "clientId": self.credential.client_id,
            "clientSecret": self.credential.client_secret,
            "subscriptions": [{"type": "EVENT", "topic": "*"}],
            "ua": "dingpass",
            "localIp": "",
        }
        try:
            answer = requests.post(self.open_url, json=body, timeout=OPEN_TIMEOUT)
            answer.raise_for_status()
            connection: dict[str, str] = answer.json()
        except (requests.RequestException, ValueError) as err:
            log.warning("stream: opening a connection failed: %s", err)
            return None
        return connection

    async def start(self) -> None:
        """Stay connected until stop(): reconnect with backoff after any failure."""
        self.pre_start()
        self._stopping = asyncio.Event()
        backoff = BACKOFF_FIRST
        while not self._stopping.is_set():
            connection = await asyncio.to_thread(self.open_connection)
            if connection is not None and await self._session(connection):
                backoff = BACKOFF_FIRST
            if not self._stopping.is_set():
                await self._pause(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
        await self._drain()

    def stop(self) -> None:
        """Leave: stop reading, finish and acknowledge the frames in hand, then close."""
        if self._stopping is not None:
            self._stopping.set()

    async def _session(self, connection: dict[str, str]) -> bool:
        """One connection, until it closes or is found dead; True if it was established."""
        uri = f"{connection['endpoint']}?ticket={quote_plus(connection['ticket'])}"
        try:
            # A short close timeout: a link found dead cannot carry a close handshake.
            async with websockets.connect(
                uri, open_timeout=OPEN_TIMEOUT, close_timeout=CLOSE_TIMEOUT
            ) as websocket:
                self.websocket, self.connections = websocket, self.connections + 1
                log.info("stream: connected (%d)", self.connections)
                await self._receive(websocket)
                return True
        except (
            OSError,
            asyncio.TimeoutError,
            websockets.exceptions.WebSocketException,
        ) as err:
            log.warning("stream: connection lost: %s", err)
            return False

    async def _receive(self, websocket: Any) -> None:
        assert self._stopping is not None  # noqa: S101 -- start() set it
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            while True:
                frame = asyncio.ensure_future(websocket.recv())
                done, _ = await asyncio.wait(
                    {frame, stopping},
                    timeout=self.idle_seconds,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if frame in done:
                    self._route(json.loads(frame.result()))
                else:
                    frame.cancel()  # websockets allows cancelling recv()
                if stopping in done:
                    # Acknowledge what is in hand before the connection closes.
                    await self._drain()
                    return
                if not done and not await self._alive(websocket):
                    log.warning(
                        "stream: no pong within %.0f s; the connection is dead, reconnecting",
                        self.pong_seconds,
                    )
                    return
        finally:
            stopping.cancel()

    def _route(self, message: dict[str, Any]) -> None:
        task = asyncio.create_task(self.background_task(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _alive(self, websocket: Any) -> bool:
        try:
            pong = await websocket.ping()
            await asyncio.wait_for(pong, self.pong_seconds)
        except (asyncio.TimeoutError, websockets.exceptions.ConnectionClosed):
            return False
        return True

    async def _pause(self, seconds: float) -> None:
        assert self._stopping is not None  # noqa: S101 -- start() set it
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def _drain(self) -> None:
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
