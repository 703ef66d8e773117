"""Function Compute around the functions of a benchmark: asynchronous invocation and HTTP triggers.

FC's API (InvokeFunction) is the tests' front door (tests/integration/fc_front_door.py), which
checks a call's signature and role as FC does and answers 202; here it then also runs the
invocation, as FC does with ``X-Fc-Invocation-Type: Async``: later, in the background, as an
HTTP POST of the event to the function's ``/invoke`` with the x-fc-* headers FC adds. Async
invocations are not retried (s.yaml's ``maxAsyncRetryAttempts: 0``).
"""

import secrets
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from tests.integration.fc_front_door import FcFrontDoor, Sts

CONCURRENCY = 10
"""Invocations run at once. FC starts as many runner instances as the queue needs; a bound
keeps this machine's two cores from being the only thing measured under load."""
TIMEOUT = 60.0
"""Seconds an invocation may run: the runner function's timeout in s.yaml."""

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass
class Tally:
    """What FC's API did with the kicks: invocations accepted, refused, run, failed."""

    accepted: int = 0
    refused: int = 0
    ran: int = 0
    failed: list[str] = field(default_factory=list)
    queued_for: list[float] = field(default_factory=list)
    """Seconds from the 202 to the invocation's start, each."""

    def summary(self) -> str:
        """One line for the benchmark's output."""
        waits = sorted(self.queued_for) or [0.0]
        return (
            f"FC API: {self.accepted} invocations accepted (202), {self.refused} refused; "
            f"runner function: {self.ran} ran, {len(self.failed)} failed; "
            f"longest wait for one of {CONCURRENCY} runs at once {waits[-1] * 1000:.0f} ms"
        )


class AsyncInvoker:
    """FC's InvokeFunction API for functions served over HTTP, run asynchronously (WSGI app)."""

    def __init__(self, front_door: FcFrontDoor, functions: dict[str, str], role: Sts) -> None:
        """``functions``: each function's name and the base URL that serves it; ``role``:
        the credentials FC hands each invocation in its x-fc-* headers."""
        self.front_door, self.functions, self.role = front_door, functions, role
        self.tally = Tally()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="fc-async")
        self._session = requests.Session()
        self._session.trust_env = False  # loopback only, whatever proxy the environment names
        self._session.mount("http://", HTTPAdapter(pool_maxsize=CONCURRENCY))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("HTTP_X_FC_INVOCATION_TYPE", "").lower() != "async":
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [b"this stand-in runs asynchronous invocations only"]
        statuses: list[str] = []

        def noted(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            statuses.append(status)
            return start_response(status, headers, *exc_info)

        # One at a time: the front door appends each accepted call to a shared list.
        with self._lock:
            answer = self.front_door.api(environ, noted)
            accepted = statuses[0].startswith("202")
            invocation = self.front_door.invocations.pop() if accepted else None
            self.tally.accepted += accepted
            self.tally.refused += not accepted
        if invocation is not None:
            self._pool.submit(self._run, invocation, time.perf_counter())
        return answer

    def _run(self, invocation: dict[str, Any], accepted_at: float) -> None:
        self.tally.queued_for.append(time.perf_counter() - accepted_at)
        function = invocation["function"]
        headers = {**self.role.headers(), "x-fc-request-id": secrets.token_hex(16)}
        try:
            answer = self._session.post(
                f"{self.functions[function]}/invoke",
                data=invocation["body"],
                headers=headers,
                timeout=TIMEOUT,
            )
            answer.raise_for_status()
        except (requests.RequestException, KeyError) as err:
            with self._lock:
                self.tally.failed.append(f"{function}: {err}")
            return
        with self._lock:
            self.tally.ran += 1

    def close(self) -> None:
        """Let every accepted invocation run: FC does not drop them."""
        self._pool.shutdown(wait=True)
        self._session.close()


def http_trigger(app: WsgiApp, role: Sts) -> WsgiApp:
    """An anonymous HTTP trigger in front of ``app`` (DingTalk's callback is not signed): FC
    adds the function role's temporary credentials to each request as x-fc-* headers."""
    added = {f"HTTP_{name.upper().replace('-', '_')}": v for name, v in role.headers().items()}

    def trigger(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ.update(added)
        environ["HTTP_X_FC_REQUEST_ID"] = secrets.token_hex(16)
        return app(environ, start_response)

    return trigger
