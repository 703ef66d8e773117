"""Sending over SMTP: plain, STARTTLS or SSL, with a login when configured."""

import re
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from backend.mail.message import Message

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

TIMEOUT = 10.0
FINAL_REPLY_TIMEOUT = 60.0
"""Seconds to wait for the answer to the whole message: a mail taken as sent on a timeout
that the server then refused would never arrive (RFC 5321 allows 10 minutes)."""
EOLS = re.compile(rb"\r\n|\n|\r")
DOTS = re.compile(rb"(?m)^\.")
"""A line starting with "." is sent as ".." (RFC 5321 4.5.2), so it cannot end the message."""


@cache
def _tls(ca_file: str | None) -> ssl.SSLContext:
    """The TLS context, made once: loading the CA bundle costs tens of milliseconds."""
    return ssl.create_default_context(cafile=ca_file)


class _HandingOver(smtplib.SMTP):
    """smtplib's SMTP, calling ``before_commit`` just before the byte that commits the mail.

    The server takes the message as sent once it reads the terminating ".": whoever sends
    must record that moment first, or a crash right after the server's acceptance leaves no
    trace that the mail went out.
    """

    before_commit: Callable[[], None] = staticmethod(lambda: None)

    def data(self, msg: "ReadableBuffer | str") -> tuple[int, bytes]:
        """DATA, as smtplib sends it, with the terminator held back for ``before_commit``."""
        self.putcmd("data")
        code, reply = self.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        text = EOLS.sub(b"\r\n", msg.encode("ascii")) if isinstance(msg, str) else bytes(msg)
        body = DOTS.sub(b"..", text)
        self.send(body if body.endswith(b"\r\n") else body + b"\r\n")
        try:
            self.before_commit()
        except BaseException:
            # Abandoned: dropped without the terminator, and without a QUIT, which the server
            # would read as a line of the message and then wait for its end with us (10 s).
            self.close()
            raise
        if self.sock is not None:
            # The terminator is a small write after a large one: with Nagle's algorithm it
            # waits for the server's delayed ACK of the body, some 40 ms per mail.
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.send(b".\r\n")
        if self.sock is not None:  # servers scan the message before answering (RFC 5321 4.5.3.2)
            self.sock.settimeout(FINAL_REPLY_TIMEOUT)
        return self.getreply()


class _HandingOverSsl(_HandingOver, smtplib.SMTP_SSL):
    """The same over implicit TLS (port 465)."""


@dataclass(frozen=True)
class SmtpSender:
    """One mail server."""

    host: str
    port: int
    security: str = "none"  # none | starttls | ssl
    user: str | None = None
    password: str | None = None
    helo: str = "localhost"
    """The name we greet with; given, because smtplib would look it up (reverse DNS) every time."""
    ca_file: str | None = None
    """CA bundle to trust instead of the system's (a private mail relay)."""

    def send(
        self, message: Message, recipient: str, before_commit: Callable[[], None] = lambda: None
    ) -> None:
        """Hand ``message`` to the server for ``recipient`` alone; returns once it was accepted.

        ``before_commit`` runs once the whole message is with the server but not yet committed
        (see _HandingOver); if it raises, the mail is abandoned unsent.
        """
        with self._connect() as client:
            if self.security == "starttls":
                client.starttls(context=_tls(self.ca_file))
            if self.user:
                client.login(self.user, self.password or "")
            client.before_commit = before_commit
            # The envelope names the applicant only, whatever the headers say.
            client.send_message(message, to_addrs=[recipient])

    def _connect(self) -> _HandingOver:
        if self.security == "ssl":
            context = _tls(self.ca_file)
            return _HandingOverSsl(
                self.host, self.port, self.helo, timeout=TIMEOUT, context=context
            )
        return _HandingOver(self.host, self.port, self.helo, timeout=TIMEOUT)
