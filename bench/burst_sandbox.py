"""The DingTalk sandbox of bench/burst.py, in a process of its own as DingTalk is to dingpass.

It enforces DingTalk's per-app, per-API limit (QPS mode) and records every call. It prints its
URL as its first line. Each line of input after that asks what it saw, answered as one JSON
line: the calls by API and HTTP status, the calls refused for their rate by API, and each
license-form instance's application number and start time. The sandbox keeps its call records
in memory only (no HTTP endpoint serves them), hence the pipe. It stops when its input ends.

``python bench/burst_sandbox.py QPS``: QPS is the calls a second each API allows.
"""

import json
import logging
import sys

from served import APP_KEY, APP_SECRET, PROCESS_CODE

from sandbox.server import Sandbox, SandboxSettings
from sandbox.state import SandboxState

NUMBER_LABEL = "申请编号"
"""The form component that carries the application's number (DINGTALK_FORM_FIELDS' default)."""


def seen(state: SandboxState) -> dict[str, object]:
    """What the sandbox saw so far, as JSON: calls, refusals, the license form's instances."""
    with state.lock:
        instances = [i for i in state.instances.values() if i.process_code == PROCESS_CODE]
        started = [[number_of(i.form), i.created_ms] for i in instances]
    return {
        "calls": [[api, status, n] for (api, status), n in state.counts().items()],
        "throttled": dict(state.throttled()),
        "instances": started,
    }


def number_of(form: list[dict[str, object]]) -> str | None:
    """The application number an instance's form carries."""
    return next((str(v["value"]) for v in form if v["name"] == NUMBER_LABEL), None)


def main() -> None:
    # Only errors: an access line per call would cost the sandbox more than its answers.
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    settings = SandboxSettings(
        APP_KEY, APP_SECRET, PROCESS_CODE, stream=False, qps_limit=int(sys.argv[1])
    )
    sandbox = Sandbox(settings).start()
    print(sandbox.url, flush=True)
    for _line in sys.stdin:
        print(json.dumps(seen(sandbox.state)), flush=True)
    sandbox.stop()


if __name__ == "__main__":
    main()
