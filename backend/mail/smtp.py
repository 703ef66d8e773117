"""Sending over SMTP: plain, STARTTLS or SSL, with a login when configured."""

import smtplib
import ssl
from dataclasses import dataclass
from functools import cache

from backend.mail.message import Message

TIMEOUT = 10.0


@cache
def _tls(ca_file: str | None) -> ssl.SSLContext:
    """The TLS context, made once: loading the CA bundle costs tens of milliseconds."""
    return ssl.create_default_context(cafile=ca_file)


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

    def send(self, message: Message) -> None:
        """Hand ``message`` to the server; returns once the server accepted it, raises otherwise."""
        if self.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host,
                self.port,
                self.helo,
                timeout=TIMEOUT,
                context=_tls(self.ca_file),
            )
        else:
            client = smtplib.SMTP(self.host, self.port, self.helo, timeout=TIMEOUT)
        with client:
            if self.security == "starttls":
                client.starttls(context=_tls(self.ca_file))
            if self.user:
                client.login(self.user, self.password or "")
            client.send_message(message)
