"""The mail sandbox: a real SMTP server (aiosmtpd) on loopback that keeps what it receives,
and an inbox page that shows it, attachments downloadable, beside what the group robots
(sandbox/robots.py, served by the same web server) took."""

import asyncio
import errno
import itertools
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from flask import Flask, Response, abort, render_template
from werkzeug.serving import make_server

from sandbox import robots as robot_webhooks
from sandbox.robot_markdown import render_markdown, render_text
from sandbox.robots import Clock, Robots


@dataclass
class Mailbox:
    """Every message the SMTP server accepted, in arrival order."""

    messages: dict[int, EmailMessage] = field(default_factory=dict)
    envelopes: dict[int, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: "itertools.count[int]" = field(default_factory=lambda: itertools.count(1))

    def add(self, raw: bytes, recipients: list[str]) -> int:
        """Keep one accepted message."""
        message = message_from_bytes(raw, policy=policy.default)
        with self.lock:
            number = next(self._ids)
            self.messages[number] = message
            self.envelopes[number] = recipients
            return number

    def summary(self) -> list[dict[str, Any]]:
        """The inbox, newest first, as the page and the tests read it."""
        with self.lock:
            items = list(self.messages.items())
        return [
            {
                "id": number,
                "subject": m["Subject"],
                "to": m["To"],
                "from": m["From"],
                "date": m["Date"],
                "message_id": m["Message-ID"],
                "attachments": [a.get_filename() for a in m.iter_attachments()],
            }
            for number, m in reversed(items)
        ]


@dataclass
class MailFaults:
    """Switches for tests: stall the conversation at a chosen point, in seconds."""

    stall_before_data: float = 0.0
    """After RCPT: the sender has handed nothing over yet."""
    stall_after_accepting: float = 0.0
    """After keeping the message, before saying so: the sender cannot know it was accepted."""
    refuse_after_data: int = 0
    """How many of the next messages to refuse once they are in, as greylisting does (451)."""


class _Handler:
    def __init__(self, mailbox: Mailbox, faults: MailFaults) -> None:
        self.mailbox, self.faults = mailbox, faults

    async def handle_RCPT(  # noqa: N802 -- aiosmtpd's name
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        await asyncio.sleep(self.faults.stall_before_data)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 -- aiosmtpd's name
        if self.faults.refuse_after_data > 0:
            self.faults.refuse_after_data -= 1
            return "451 4.7.1 Greylisted: try again later"
        self.mailbox.add(envelope.content, list(envelope.rcpt_tos))
        await asyncio.sleep(self.faults.stall_after_accepting)
        return "250 Message accepted for delivery"


class DialogueAtDebug(logging.Filter):
    """aiosmtpd's INFO lines at DEBUG: the SMTP dialogue, line by line, and a "connection lost"
    after every QUIT are no news in a log; `dingpass -v` shows them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO:
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


SMTP_LOG = logging.getLogger("mail.log")
"""aiosmtpd's logger."""


def _quiet_smtp_dialogue() -> None:
    if not any(isinstance(f, DialogueAtDebug) for f in SMTP_LOG.filters):
        SMTP_LOG.addFilter(DialogueAtDebug())


class MailSandbox:
    """SMTP on one loopback port, the inbox page and the robot webhooks on another."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        smtp_port: int = 0,
        web_port: int = 0,
        clock: Clock = time.time,
    ) -> None:
        _quiet_smtp_dialogue()
        self.mailbox, self.faults = Mailbox(), MailFaults()
        self.robots = Robots(clock)
        self.host, self._smtp_port = host, smtp_port
        self.controller: Controller | None = None
        if smtp_port:
            self.smtp_up()
        else:
            self._smtp_up_on_a_free_port()
        self._web = make_server(host, web_port, inbox_app(self.mailbox, self.robots), threaded=True)
        self.url = f"http://{host}:{self._web.server_port}"
        self._serving: threading.Thread | None = None

    @property
    def smtp_port(self) -> int:
        """The SMTP server's port."""
        return self._smtp_port

    def start(self) -> "MailSandbox":
        """Serve the inbox page in a background thread."""
        self._serving = threading.Thread(
            target=self._web.serve_forever, args=(0.05,), name="inbox", daemon=True
        )
        self._serving.start()
        return self

    def smtp_up(self) -> None:
        """Accept mail (again)."""
        # A fixed server name: else aiosmtpd looks its own up (reverse DNS) per connection.
        controller = Controller(
            _Handler(self.mailbox, self.faults),
            hostname=self.host,
            port=self._smtp_port,
            server_hostname="mail-sandbox.localhost",
        )
        try:
            controller.start()
        except OSError:
            controller.loop.close()  # aiosmtpd leaves it open when it cannot listen
            raise
        self.controller = controller

    def _smtp_up_on_a_free_port(self, tries: int = 5) -> None:
        # A port found free can be taken before the server binds it (by any outgoing
        # connection's source port): then another one is tried.
        for attempt in range(tries):
            self._smtp_port = _free_port(self.host)
            try:
                self.smtp_up()
                return
            except OSError as error:
                if error.errno != errno.EADDRINUSE or attempt == tries - 1:
                    raise

    def smtp_down(self) -> None:
        """Refuse connections, as a mail server that is down does."""
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def stop(self) -> None:
        """Stop both servers."""
        self.smtp_down()
        if self._serving is not None:  # shutdown() waits for a loop that never began
            self._web.shutdown()
        self._web.server_close()


def _free_port(host: str) -> int:
    # aiosmtpd's Controller cannot listen on port 0: its readiness probe connects to the port
    # it was given.
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _content_type(part: EmailMessage) -> str:
    charset = part.get_param("charset")
    kind = part.get_content_type()
    return f"{kind}; charset={charset}" if isinstance(charset, str) else kind


def _chat_view(message: dict[str, Any]) -> dict[str, Any]:
    """One accepted robot message as the page shows it."""
    markdown = message["msgtype"] in ("markdown", "actionCard")
    body = render_markdown if markdown else render_text
    at = message["at"]
    mentioned = [*at.get("atMobiles", []), *at.get("atUserIds", [])]
    mentioned += [*at.get("mentioned_list", []), *at.get("mentioned_mobile_list", [])]
    everyone = at.get("isAtAll") is True or "@all" in mentioned
    return {
        **message,
        "html": body(message["text"]),
        "time": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(message["at_ms"] / 1000)),
        "mentions": ["所有人"] if everyone else [str(m) for m in mentioned],
    }


def inbox_app(mailbox: Mailbox, robots: Robots | None = None) -> Flask:
    """The inbox page over ``mailbox``, and the group robots' webhooks over ``robots``."""
    app = Flask(__name__)  # finds sandbox/templates
    robots = robots if robots is not None else Robots()
    robot_webhooks.init_app(app, robots)

    @app.get("/")
    def inbox() -> str:
        chats = [_chat_view(m) for m in robots.accepted()]
        return render_template("inbox.html", messages=mailbox.summary(), chats=chats)

    @app.get("/messages.json")
    def messages() -> Any:
        return {"messages": mailbox.summary()}

    @app.get("/messages/<int:number>")
    def message(number: int) -> str:
        found = mailbox.messages.get(number) or abort(404)
        body = found.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        attachments = [a.get_filename() for a in found.iter_attachments()]
        return render_template(
            "message.html",
            number=number,
            message=found,
            text=text,
            attachments=attachments,
        )

    @app.get("/messages/<int:number>/attachments/<int:index>")
    def attachment(number: int, index: int) -> Response:
        found = mailbox.messages.get(number) or abort(404)
        parts = list(found.iter_attachments())
        if index >= len(parts):
            abort(404)
        part = parts[index]
        headers = {"Content-Disposition": f'attachment; filename="{part.get_filename()}"'}
        # The bytes as sent, under the type the mail gave them (its charset too), as a mail
        # client saves an attachment: nothing decoded here and encoded again.
        content = part.get_payload(decode=True)
        return Response(content, content_type=_content_type(part), headers=headers)

    return app
