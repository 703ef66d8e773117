"""The sandbox's own HTTP endpoints under ``/_sandbox/``: faults, resources and settings.

- ``GET /_sandbox/faults``: the faults on; ``POST`` (JSON ``{"kind", "action", "times",
  "seconds", "retry_after"}``) switches one on; ``DELETE`` (``?kind=``) switches off.
- ``GET /_sandbox/resources``: every resource and the counts per kind; ``DELETE`` forgets all.
- ``GET /_sandbox/settings``: ``{"ready_after": seconds}``; ``PUT`` the same to change it.
"""

import json
from typing import Any

from werkzeug.wrappers import Request, Response

from sandbox.cloud.faults import FAULT_KINDS, Faults, fault_from_json
from sandbox.cloud.state import KINDS, CloudState


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status, mimetype="application/json")


def _problem(status: int, message: str) -> Response:
    return _json({"error": message}, status)


def _body(request: Request) -> dict[str, Any]:
    """The request's JSON object; ValueError when it is not one."""
    data = json.loads(request.get_data(as_text=True) or "null")
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


class Control:
    """Answers ``/_sandbox/...`` over the state and the fault table."""

    def __init__(self, state: CloudState, faults: Faults) -> None:
        self.state = state
        self.faults = faults
        self.routes = {
            ("/_sandbox/faults", "GET"): self.list_faults,
            ("/_sandbox/faults", "POST"): self.add_fault,
            ("/_sandbox/faults", "DELETE"): self.clear_faults,
            ("/_sandbox/resources", "GET"): self.resources,
            ("/_sandbox/resources", "DELETE"): self.reset,
            ("/_sandbox/settings", "GET"): self.settings,
            ("/_sandbox/settings", "PUT"): self.change_settings,
        }

    def handle(self, request: Request) -> Response:
        """The endpoint's answer, or a JSON 404/405/400."""
        handler = self.routes.get((request.path, request.method))
        if handler is not None:
            try:
                return handler(request)
            except ValueError as error:
                return _problem(400, str(error))
        if any(path == request.path for path, _ in self.routes):
            return _problem(405, f"{request.method} is not allowed on {request.path}")
        return _problem(404, f"no sandbox endpoint {request.path}")

    def list_faults(self, request: Request) -> Response:
        return _json({"faults": [f.to_json() for f in self.faults.active()]})

    def add_fault(self, request: Request) -> Response:
        fault = self.faults.add(fault_from_json(_body(request)))
        return _json(
            {"fault": fault.to_json(), "faults": [f.to_json() for f in self.faults.active()]}, 201
        )

    def clear_faults(self, request: Request) -> Response:
        kind = request.args.get("kind")
        if kind is not None and kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)} (got {kind!r})")
        self.faults.clear(kind)
        return _json({"faults": [f.to_json() for f in self.faults.active()]})

    def resources(self, request: Request) -> Response:
        counts = {kind: self.state.count(kind) for kind in KINDS}
        return _json({"resources": self.state.summaries(), "counts": counts})

    def reset(self, request: Request) -> Response:
        self.state.reset()
        return _json({"resources": [], "counts": {kind: 0 for kind in KINDS}})

    def settings(self, request: Request) -> Response:
        return _json({"ready_after": self.state.ready_after})

    def change_settings(self, request: Request) -> Response:
        data = _body(request)
        if set(data) - {"ready_after"}:
            raise ValueError(f"unknown settings: {', '.join(sorted(set(data) - {'ready_after'}))}")
        value = data.get("ready_after", self.state.ready_after)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"ready_after must be a number of seconds, 0 or more (got {value!r})")
        self.state.ready_after = float(value)
        return self.settings(request)
