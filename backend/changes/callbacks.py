"""change_callback: tell the caller's callback_url that its change ended, signed, until it is taken.

POST <callback_url> with ``{"event": "change.ended", "change": <the change as GET shows it>}``
and X-Dingpass-Signature: ``sha256=`` hex HMAC-SHA256, keyed with the calling app's own
secret, of ``"<X-Dingpass-Timestamp>.<body>"``. X-Dingpass-Delivery is the same on every
attempt, so a receiver drops what it took already. Any 2xx is taken; 408, 429, 5xx and no
answer are tried again for a day; another answer, a redirect included, fails the job at once.

The runner sits inside the VPC: unless callbacks may reach private addresses (never in
production, by default), every address the host resolves to must be public, and the request
goes to the address checked, never to a second lookup that DNS could answer differently.
"""

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import SplitResult, urlsplit, urlunsplit

from backend.apps import store as apps
from backend.changes.model import Change
from backend.changes.names import CALLBACK_KIND
from backend.exceptions import DingpassError, RetryCannotHelp
from backend.jobs.model import Done, Job, Outcome, Retry
from backend.jobs.registry import Registry
from backend.services import Services
from backend.storage import changes as store
from backend.subjects import SubjectType

log = logging.getLogger(__name__)
kinds: Registry[Services] = Registry()

EVENT = "change.ended"
CALLBACK_RETRY = Retry(
    max_attempts=None,
    first=timedelta(seconds=10),
    cap=timedelta(minutes=10),
    horizon=timedelta(hours=24),
)
"""A receiver that is down or busy: backing off up to ten minutes apart, for a day."""
TIMEOUT = (5.0, 10.0)
"""Seconds to connect, and to wait for the answer once the notification is sent."""
ADDRESSES_TRIED = 3
"""Addresses of the host tried in turn when one cannot be connected to (IPv6 unrouted, say)."""
TRY_LATER = frozenset({408, 429})
"""Answers besides 5xx that ask to be sent again later."""
EXCERPT = 200
"""Characters of a refusing receiver's answer kept in the job's error."""

Resolver = Callable[[str, int], list[str]]
"""The addresses a host name resolves to, for a port: socket.getaddrinfo by default."""


class CallbackRefused(RetryCannotHelp):
    """The receiver refused the notification, or its address may not be sent to: no retry helps."""


class CallbackUnavailable(DingpassError):
    """The receiver did not answer, or asked to be sent again later: it is tried again."""


@dataclass(frozen=True)
class Notification:
    """One attempt's request: the bytes signed are the bytes sent."""

    url: str
    body: bytes
    headers: dict[str, str]

    @property
    def delivery(self) -> str:
        """The id the receiver de-duplicates by."""
        return self.headers["X-Dingpass-Delivery"]


@dataclass(frozen=True)
class Answer:
    """What the receiver answered: its status, where a redirect pointed, a bit of its body."""

    status: int
    location: str | None
    excerpt: str


def notification(change: Change, secret: str, now: datetime) -> Notification:
    """The signed notification that ``change`` ended, as of ``now``."""
    body = json.dumps(
        {"event": EVENT, "change": change.view()}, separators=(",", ":"), sort_keys=True
    ).encode()
    timestamp = str(int(now.timestamp()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "dingpass-callbacks",
        "X-Dingpass-Event": EVENT,
        "X-Dingpass-Delivery": f"{change.public_id}-ended",
        "X-Dingpass-Timestamp": timestamp,
        "X-Dingpass-Signature": sign(secret, timestamp, body),
    }
    return Notification(change.callback_url or "", body, headers)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """X-Dingpass-Signature: sha256= and the hex HMAC-SHA256 of ``timestamp.body``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@kinds.kind(CALLBACK_KIND, retry=CALLBACK_RETRY)
def deliver(services: Services, job: Job) -> Outcome:
    """Send the change's end to its callback_url; Done once a 2xx takes it."""
    change, secret = _change_and_secret(services, job)
    if change.callback_url is None:
        return Done()
    if secret is None:
        raise RetryCannotHelp(
            f"change {change.public_id} came from DingTalk: there is no app's secret to sign with"
        )
    note = notification(change, secret, services.clock())
    sender = CallbackSender(allow_private=services.callbacks_may_reach_private)
    answer = sender.send(note)
    return _settled(note, answer)


def _settled(note: Notification, answer: Answer) -> Outcome:
    host = urlsplit(note.url).hostname
    if 200 <= answer.status < 300:
        return Done()
    if answer.status in TRY_LATER or answer.status >= 500:
        raise CallbackUnavailable(
            f"{host} answered HTTP {answer.status} to {note.delivery}; it is sent again later"
        )
    if 300 <= answer.status < 400:
        raise CallbackRefused(
            f"{host} answered HTTP {answer.status}, a redirect to {answer.location!r}: "
            "callbacks do not follow redirects, so the receiver must answer at callback_url "
            "itself; once it does, `dingpass jobs retry` sends it again"
        )
    raise CallbackRefused(
        f"{host} refused {note.delivery} with HTTP {answer.status}: {answer.excerpt!r}; "
        "once the receiver takes it, `dingpass jobs retry` sends it again"
    )


class CallbackSender:
    """POSTs a notification to a checked address of its host: the seam tests aim at loopback."""

    def __init__(
        self,
        allow_private: bool = False,
        resolve: Resolver | None = None,
        verify: bool | str = True,
        timeout: tuple[float, float] = TIMEOUT,
    ) -> None:
        self.allow_private, self.resolve = allow_private, resolve or resolved
        self.verify, self.timeout = verify, timeout

    def send(self, note: Notification) -> Answer:
        """The receiver's answer, whatever its status.

        Raises:
            CallbackRefused: the URL's host or its addresses may not be sent to.
            CallbackUnavailable: the host did not resolve, or no address of it answered.
        """
        import requests  # here, not at start-up: see backend.changes.pinned_adapter

        parts = urlsplit(note.url)
        host, port = _host_and_port(parts)
        try:
            addresses = self.resolve(host, port)
        except OSError as err:
            _log(note, host, f"not resolved ({err})")
            raise CallbackUnavailable(f"{host} could not be resolved: {err}") from None
        self._check(note, host, addresses)
        failure: Exception | None = None
        for address in addresses[:ADDRESSES_TRIED]:
            try:
                return self._post(note, parts, host, address)
            except requests.ConnectionError as err:  # not connected (or cut off): the next one
                failure = err
            except requests.RequestException as err:  # sent, and no answer came in time
                failure = err
                break
        reason = _reason(failure)
        _log(note, host, f"no answer ({reason})")
        raise CallbackUnavailable(f"{host} did not answer {note.delivery}: {reason}")

    def _check(self, note: Notification, host: str, addresses: list[str]) -> None:
        closed = [a for a in addresses if not public(a)]
        if not addresses or (closed and not self.allow_private):
            _log(note, host, f"refused: not public ({', '.join(closed) or 'no address'})")
            raise CallbackRefused(
                f"callback_url's host {host} resolves to {', '.join(closed) or 'no address'}, "
                "not a public address: callbacks go only to the internet, never into the VPC "
                "(CHANGE_CALLBACK_PRIVATE=1 allows them, for development)"
            )

    def _post(self, note: Notification, parts: SplitResult, host: str, address: str) -> Answer:
        import requests

        from backend.changes.pinned_adapter import PinnedAdapter

        with requests.Session() as session:
            session.trust_env = False  # no proxy from the environment: it would resolve anew
            session.mount("https://", PinnedAdapter(host))
            response = session.post(
                _pinned_url(parts, address),
                data=note.body,
                headers={**note.headers, "Host": _host_header(parts, host)},
                timeout=self.timeout,
                verify=self.verify,
                allow_redirects=False,
                stream=True,  # a refusal's first bytes are enough; a huge body is not read
            )
            with response:
                excerpt = _excerpt(next(response.iter_content(EXCERPT), b""))
        taken = 200 <= response.status_code < 300
        _log(note, host, f"HTTP {response.status_code}", logging.INFO if taken else logging.WARNING)
        return Answer(response.status_code, response.headers.get("Location"), excerpt)


def public(address: str) -> bool:
    """Whether ``address`` is on the internet: not loopback, private, link-local, multicast,
    reserved, unspecified or shared (100.64.0.0/10 holds the cloud's metadata service)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    closed = (
        ip.is_loopback,
        ip.is_private,
        ip.is_link_local,
        ip.is_multicast,
        ip.is_reserved,
        ip.is_unspecified,
    )
    return ip.is_global and not any(closed)


def resolved(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order, each once."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def _host_and_port(parts: SplitResult) -> tuple[str, int]:
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = parts.hostname or ""
        return (host if ":" in host else host.encode("idna").decode("ascii")), port
    except (ValueError, UnicodeError) as err:
        raise CallbackRefused(f"callback_url's host or port cannot be used: {err}") from None


def _pinned_url(parts: SplitResult, address: str) -> str:
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (f"{userinfo}@" if userinfo else "") + _literal(address)
    netloc += f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


def _host_header(parts: SplitResult, host: str) -> str:
    return _literal(host) + (f":{parts.port}" if parts.port else "")


def _literal(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _reason(failure: Exception | None) -> str:
    """Why no answer came, without the URL (its path or query may hold the receiver's token)."""
    cause = failure.args[0] if failure is not None and failure.args else failure
    return f"{type(failure).__name__}: {getattr(cause, 'reason', cause)}"


def _excerpt(first: bytes) -> str:
    text = first.decode("utf-8", "replace")
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())[:EXCERPT]


def _log(note: Notification, host: str, what: str, level: int = logging.WARNING) -> None:
    """The one line each attempt logs: never the URL's path or query, never the signature."""
    log.log(level, "callback %s to %s: %s", note.delivery, host, what)


def _change_and_secret(services: Services, job: Job) -> tuple[Change, str | None]:
    """The job's change, and the secret of the app that asked for it (None: no app)."""
    if job.subject is None:
        raise RetryCannotHelp(f"job {job.id} of kind {job.kind} is about no change")
    with services.database.transaction() as connection:
        change = store.by_id(connection, job.subject.number(SubjectType.CHANGE))
        if change.app_id is None:
            return change, None
        return change, apps.by_id(connection, change.app_id, with_secret=True).secret
