"""The cloud sandbox's WSGI app: one host for VPC, ECS and RAM, its control endpoints and page.

An API call is routed on ``x-acs-action`` + ``x-acs-version`` (or ``Action`` + ``Version``
in the query, for v1 signatures), authenticated, met by the faults switched on, handled,
and answered in JSON, errors included, never HTML.
"""

import json
import logging
import socket
import time
import uuid
from collections.abc import Iterable
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from werkzeug.wrappers import Request, Response

from sandbox.cloud.actions import PRODUCTS, Action, Call, Registry, run
from sandbox.cloud.auth import Authenticator, Incoming
from sandbox.cloud.control import Control
from sandbox.cloud.errors import ApiError
from sandbox.cloud.faults import Faults
from sandbox.cloud.params import FORM, merged, parse_pairs
from sandbox.cloud.state import KINDS, CloudState

log = logging.getLogger(__name__)
INTERNAL = ApiError(
    500, "InternalError", "The request processing has failed due to some unknown error."
)


class AnswerLost(ConnectionAbortedError):
    """Raised after dropping the connection on purpose (the ``lose_answer`` fault).

    A ConnectionError, so werkzeug's server takes it for a client that went away: no
    answer, no traceback.
    """


def json_response(body: dict[str, Any], status: int = 200, **headers: str) -> Response:
    """A JSON answer."""
    text = json.dumps(body, ensure_ascii=False)
    return Response(text, status, headers=headers, mimetype="application/json")


def incoming(request: Request) -> Incoming:
    """The parts of the request its signature covers, with a form body decoded."""
    body = request.get_data(cache=True)
    form: list[tuple[str, str]] = []
    if (request.mimetype or "") == FORM and body:
        try:
            form = parse_pairs(body.decode("utf-8"))
        except UnicodeDecodeError:
            raise ApiError(400, "InvalidParameter", "The form body is not UTF-8.") from None
    query = parse_pairs(request.environ.get("QUERY_STRING", ""))
    headers = {name.lower(): value for name, value in request.headers.items()}
    return Incoming(request.method, request.path, query, headers, body, form)


def route(request: Request) -> tuple[str, str]:
    """The (version, action) a request calls, from what its signature covers: the ACS3
    headers, or a v2 request's query (whose x-acs-* headers the SDK sends unsigned)."""
    if "Signature" in request.args:
        return request.args.get("Version", ""), request.args.get("Action", "")
    version = request.headers.get("x-acs-version") or request.args.get("Version") or ""
    action = request.headers.get("x-acs-action") or request.args.get("Action") or ""
    return version, action


def check_route(request: Request) -> None:
    """Refuse a v2 request whose unsigned x-acs-* headers name another action than it signed."""
    if "Signature" not in request.args:
        return
    signed = request.args.get("Action"), request.args.get("Version")
    claimed = request.headers.get("x-acs-action"), request.headers.get("x-acs-version")
    if any(said not in (None, meant) for said, meant in zip(claimed, signed, strict=True)):
        raise ApiError(
            400,
            "InvalidParameter",
            "x-acs-action and x-acs-version disagree with the signed Action and Version.",
        )


class CloudApp:
    """The WSGI application over one cloud state, fault table and key table."""

    def __init__(
        self,
        state: CloudState,
        faults: Faults,
        auth: Authenticator,
        registries: Iterable[Registry],
    ) -> None:
        self.state = state
        self.faults = faults
        self.auth = auth
        self.actions = {(a.version, a.name): a for registry in registries for a in registry}
        self.control = Control(state, faults)
        self.templates = Environment(
            loader=PackageLoader("sandbox.cloud", "templates"), autoescape=select_autoescape()
        )

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except AnswerLost:
            connection = environ.get("werkzeug.socket")
            if isinstance(connection, socket.socket):
                connection.shutdown(socket.SHUT_RDWR)
            raise
        result: Iterable[bytes] = response(environ, start_response)
        return result

    def dispatch(self, request: Request) -> Response:
        """The answer to any request: control endpoint, page or API call."""
        if request.path.startswith("/_sandbox/"):
            return self.control.handle(request)
        if request.path == "/" and request.method == "GET" and not any(route(request)):
            return self.page()
        return self.api(request)

    def page(self) -> Response:
        """The HTML page listing every resource and the faults switched on."""
        html = self.templates.get_template("cloud.html").render(
            resources=self.state.summaries(),
            counts={kind: self.state.count(kind) for kind in KINDS},
            faults=[f.to_json() for f in self.faults.active()],
            ready_after=self.state.ready_after,
        )
        return Response(html, mimetype="text/html")

    def api(self, request: Request) -> Response:
        """Answer one API call, logging one line for it."""
        request_id = str(uuid.uuid4()).upper()
        version, name = route(request)
        product = PRODUCTS.get(version)
        label = product.name if product else version or "-"  # Vpc, Ecs, Ram in the log
        caller = "-"
        try:
            check_route(request)
            action = self._action(version, name)
            call = incoming(request)
            who = self.auth.authenticate(call)
            caller = who.access_key_id
            self._refuse_by_fault(name)
            params = merged(call.query, dict(call.form))
            answer = run(action, Call(name, params, who, self.state, self.faults))
        except ApiError as error:
            log.info(
                "%s %s by %s: %d %s (%s)",
                label,
                name,
                caller,
                error.status,
                error.code,
                request_id,
            )
            return self._error(error, request_id, version, request)
        except Exception:
            log.exception("%s %s by %s: internal error (%s)", label, name, caller, request_id)
            return self._error(INTERNAL, request_id, version, request)
        return self._answer(label, name, caller, request_id, answer)

    def _action(self, version: str, name: str) -> Action:
        action = self.actions.get((version, name))
        if action is None:
            raise ApiError(
                404,
                "InvalidAction.NotFound",
                f"Specified api {name!r} of version {version!r} is not found, "
                "please check your url and method.",
            )
        return action

    def _refuse_by_fault(self, name: str) -> None:
        if (fault := self.faults.take("throttling", name)) is not None:
            retry = (
                {} if fault.retry_after is None else {"x-acs-retry-after": str(fault.retry_after)}
            )
            raise ApiError(
                400, "Throttling.User", "Request was denied due to user flow control.", retry
            )
        if self.faults.take("unavailable", name) is not None:
            raise ApiError(
                503,
                "ServiceUnavailable",
                "The request has failed due to a temporary failure of the server.",
            )

    def _answer(
        self, label: str, name: str, caller: str, request_id: str, answer: dict[str, Any]
    ) -> Response:
        """The success answer, unless a fault loses or delays it (the call is done either way)."""
        if self.faults.take("lose_answer", name) is not None:
            log.info(
                "%s %s by %s: done, answer lost on purpose (%s)", label, name, caller, request_id
            )
            raise AnswerLost(f"{name}: answer lost on purpose")
        if (slow := self.faults.take("slow", name)) is not None:
            time.sleep(slow.seconds)
        log.info("%s %s by %s: 200 OK (%s)", label, name, caller, request_id)
        return json_response(
            {"RequestId": request_id, **answer}, 200, **{"x-acs-request-id": request_id}
        )

    @staticmethod
    def _error(error: ApiError, request_id: str, version: str, request: Request) -> Response:
        product = PRODUCTS.get(version)
        host = product.host if product else request.host
        body = error.body(request_id, host, product.name if product else "")
        return json_response(
            body, error.status, **{"x-acs-request-id": request_id, **error.headers}
        )
