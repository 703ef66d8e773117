"""The frontend relays the changes API as its callers sign it: the same path, query, body and
signed headers reach the backend, and the backend's statuses and headers come back. A 401 or
403 is relayed when it is the backend's answer to the caller's app signature, and is the
frontend's 503 when FC's gateway or the backend refused the proxy itself."""

import gzip
import http
import json
import re
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import formatdate

import pytest
from werkzeug.wrappers import Request

from backend import defaults
from backend.app import create_app as create_backend
from backend.apps import errors as app_errors
from backend.apps import store as apps
from backend.signed_requests import signature as proxy_signature
from frontend import checks
from frontend.app import CALLER_REFUSALS
from tests.app_signing import signed_headers
from tests.conftest import ROOT
from tests.integration.conftest import SECRET, LiveServer
from tests.integration.fc_front_door import FcFrontDoor, Sts
from tests.integration.test_frontend import frontend_for

CHANGES = "/api/v1/changes"
KEY, APP_SECRET = "203753385", "vector-app-secret-0123456789abcdef"
INSTANCE = {
    "type": "ecs.instance",
    "request_id": "itsm-CHG0042",
    "spec": {
        "vpc": "new",
        "zone_id": "cn-hangzhou-h",
        "image_id": "aliyun_3_x64_20G_alibase_20240528.vhd",
        "instance_type": "ecs.g7.large",
        "name": "web-1",
    },
}
# Spacing and escapes a JSON encoder would not reproduce: the relay must not re-encode.
ODD_BODY = b'{ "type":"vpc",\n  "request_id" : "r-\\u00e9-1", "spec": {"name": "\xe7\xbd\x91"} }'
FRONTEND = Sts("STS.web-key", "web-secret", "web-sts-token", frozenset({"dingpass-backend"}))
FC2_FRONTEND = Sts("STS.web2-key", "web2-secret", "web2-sts", frozenset({"dingpass/backend"}))
FC2_BACKEND = "/2016-08-15/proxy/dingpass/backend"


@dataclass(frozen=True)
class Seen:
    """A request as the stand-in backend received it."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class StandIn:
    """A backend that records what reaches it and answers as told."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"changes": [], "next_cursor": null}'
    seen: list[Seen] = field(default_factory=list)

    def __call__(self, environ, start_response):
        request = Request(environ)
        target = environ["RAW_URI"]  # the request line's target, as sent
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.seen.append(Seen(request.method, target, headers, request.get_data()))
        phrase = http.HTTPStatus(self.status).phrase
        answer = [("Content-Type", "application/json"), *self.headers.items()]
        start_response(f"{self.status} {phrase}", answer)
        return [self.body]


@pytest.fixture
def stand_in():
    return StandIn()


@pytest.fixture
def stand_in_server(stand_in):
    server = LiveServer(stand_in)
    yield server
    server.stop()


@pytest.fixture
def front(stand_in_server, tmp_path):
    return frontend_for(stand_in_server.url, tmp_path)


def signed(method: str, target: str, body: bytes = b"", **options) -> dict[str, str]:
    """A caller's app-signed headers for ``target``, JSON bodies declared as such."""
    content_type = "application/json; charset=utf-8" if body else None
    return signed_headers(KEY, APP_SECRET, method, target, body, content_type, **options)


def test_a_change_reaches_the_same_path_with_its_body_byte_for_byte(front, stand_in):
    front.post(CHANGES, data=ODD_BODY, headers=signed("POST", CHANGES, ODD_BODY))
    (seen,) = stand_in.seen
    assert (seen.method, seen.target, seen.body) == ("POST", CHANGES, ODD_BODY)


@pytest.mark.parametrize(
    "query",
    [
        "status=running&since=2026-01-01T00%3A00%3A00Z&limit=5&cursor=42",
        "limit=20&until=2026-11-30T08:00:00%2B08:00",
        "status=&_=1795420800000&q=a%20b+c~",
    ],
)
def test_the_query_string_reaches_the_backend_as_sent(front, stand_in, query):
    front.get(f"{CHANGES}?{query}", headers=signed("GET", f"{CHANGES}?{query}"))
    (seen,) = stand_in.seen
    assert seen.target == f"{CHANGES}?{query}"


def test_a_single_change_is_asked_for_at_the_same_path(front, stand_in):
    front.get(f"{CHANGES}/chg-3f9a1c2b7d4e5f60", headers=signed("GET", CHANGES))
    assert [s.target for s in stand_in.seen] == [f"{CHANGES}/chg-3f9a1c2b7d4e5f60"]


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("POST", "/api/v1/codes/batches"),
        ("GET", "/api/v1/codes/batches/bat-3f9a1c2b7d4e5f60"),
        ("DELETE", "/api/v1/codes/batches/bat-3f9a1c2b7d4e5f60"),
        ("POST", "/api/v1/codes/query"),
        ("POST", "/api/v1/codes/redeem"),
        ("POST", "/api/v1/codes/delete"),
    ],
)
def test_the_codes_api_is_relayed_at_the_same_path_with_its_body(front, stand_in, method, target):
    body = ODD_BODY if method == "POST" else b""
    front.open(target, method=method, data=body, headers=signed(method, target, body))
    (seen,) = stand_in.seen
    assert (seen.method, seen.target, seen.body) == (method, target, body)


def test_a_code_action_the_api_lacks_is_not_relayed(front, stand_in):
    answer = front.post("/api/v1/codes/guess", data=b"{}", headers=signed("POST", "x"))
    assert answer.status_code == 404 and stand_in.seen == []


def test_every_header_the_callers_signature_covers_passes_unchanged(front, stand_in):
    headers = signed(
        "POST",
        CHANGES,
        ODD_BODY,
        date="Mon, 23 Nov 2026 08:00:00 GMT",
        extra={"X-Ca-Stage": "RELEASE", "X-Custom-Trace": "trace-42"},
        sign_also=["X-Custom-Trace"],
    )
    front.post(CHANGES, data=ODD_BODY, headers={**headers, "X-Unsigned": "not-signed"})
    (seen,) = stand_in.seen
    assert {name.lower(): value for name, value in headers.items()}.items() <= seen.headers.items()
    assert "x-unsigned" not in seen.headers


def test_no_accept_is_added_when_the_caller_signed_none(front, stand_in):
    headers = signed("GET", CHANGES, accept=None)
    front.get(CHANGES, headers=headers)
    (seen,) = stand_in.seen
    assert "accept" not in seen.headers and "content-type" not in seen.headers


def test_an_answer_compressed_for_the_caller_comes_back_as_the_backend_wrote_it(front, stand_in):
    headers = signed(
        "GET", CHANGES, extra={"Accept-Encoding": "gzip"}, sign_also=["Accept-Encoding"]
    )
    stand_in.headers = {"Content-Encoding": "gzip"}
    stand_in.body = gzip.compress(b'{"changes": [], "next_cursor": null}')
    answer = front.get(CHANGES, headers=headers)
    assert stand_in.seen[0].headers["accept-encoding"] == "gzip"
    assert answer.get_json() == {"changes": [], "next_cursor": None}
    assert "Content-Encoding" not in answer.headers


def test_the_relay_still_signs_as_the_proxy_over_the_path_and_query(front, stand_in):
    target = f"{CHANGES}?status=planned&limit=5"
    front.get(target, headers=signed("GET", target), environ_base={"REMOTE_ADDR": "192.0.2.9"})
    (seen,) = stand_in.seen
    stamp, ip = seen.headers["x-dingpass-timestamp"], seen.headers["x-dingpass-client-ip"]
    expected = proxy_signature(SECRET.encode(), "GET", target, stamp, ip, None, b"")
    assert ip == "192.0.2.9" and seen.headers["x-dingpass-signature"] == expected


def test_the_frontends_credentials_and_a_callers_proxy_headers_never_pass(front, stand_in):
    forged = {"X-Dingpass-Client-Ip": "10.0.0.1", "Cookie": "session=abc"}
    headers = signed("GET", CHANGES, extra=forged, sign_also=["Cookie", "X-Dingpass-Client-Ip"])
    front.get(CHANGES, headers={**headers, **FRONTEND.headers()})
    (seen,) = stand_in.seen
    assert "x-fc-access-key-secret" not in seen.headers and "cookie" not in seen.headers
    assert seen.headers["x-dingpass-client-ip"] != "10.0.0.1"


ANSWERS = [
    (202, {"Location": f"{CHANGES}/chg-3f9a1c2b7d4e5f60", "Idempotent-Replayed": "true"}),
    (201, {"Content-Disposition": 'attachment; filename="bat-3f9a1c2b7d4e5f60.csv"'}),
    (409, {}),
    (422, {}),
    (400, {}),
    (404, {}),
    (429, {"Retry-After": "30"}),
    (503, {"Retry-After": "5"}),
]


@pytest.mark.parametrize(("status", "headers"), ANSWERS, ids=[str(s) for s, _ in ANSWERS])
def test_the_backends_status_headers_and_body_come_back(front, stand_in, status, headers):
    stand_in.status, stand_in.headers = status, headers
    stand_in.body = b'{"error": "anything", "message": {"zh": "\xe5\x97\xaf", "en": "hm"}}'
    answer = front.post(CHANGES, data=ODD_BODY, headers=signed("POST", CHANGES, ODD_BODY))
    assert (answer.status_code, answer.data) == (status, stand_in.body)
    assert headers.items() <= dict(answer.headers).items()
    assert answer.headers["Cache-Control"] == "no-store"


def refusal(code: str) -> bytes:
    return json.dumps({"error": code, "message": {"zh": "拒绝", "en": "refused"}}).encode()


@pytest.mark.parametrize("code", sorted(CALLER_REFUSALS))
def test_the_backends_refusal_of_the_callers_signature_is_relayed(front, stand_in, code):
    stand_in.status = 403 if code == "app_disabled" else 401
    stand_in.body = refusal(code)
    stand_in.headers = {"X-Ca-Error-Message": "Invalid Signature, Server StringToSign:`GET#`"}
    answer = front.get(CHANGES, headers=signed("GET", CHANGES))
    assert (answer.status_code, answer.get_json()["error"]) == (stand_in.status, code)
    assert answer.headers["X-Ca-Error-Message"] == stand_in.headers["X-Ca-Error-Message"]


NOT_THE_CALLERS = {
    "fc3 gateway": (403, b'{"Code": "AccessDenied", "Message": "denied", "RequestId": "1"}'),
    "fc2 gateway": (403, b'{"ErrorCode": "SignatureNotMatch", "ErrorMessage": "no"}'),
    "not json": (401, b"<html>401 Unauthorized</html>"),
    "proxy hmac": (401, refusal("unauthorized")),
}


@pytest.mark.parametrize(("status", "body"), NOT_THE_CALLERS.values(), ids=list(NOT_THE_CALLERS))
def test_a_refusal_of_the_proxy_itself_is_the_frontends_503(front, stand_in, caplog, status, body):
    stand_in.status, stand_in.body = status, body
    answer = front.get(CHANGES, headers=signed("GET", CHANGES))
    assert answer.status_code == 503 and answer.get_json()["error"] == "backend_unavailable"
    assert "the backend refused the frontend's signed request" in caplog.text


def test_the_frontend_knows_every_refusal_the_backend_gives_a_callers_signature():
    """CALLER_REFUSALS is written again in the frontend (it imports nothing of the backend)."""
    pending, codes = [app_errors.AppAuthError], set()
    while pending:
        kind = pending.pop()
        pending.extend(kind.__subclasses__())
        if not kind.__subclasses__() and kind.status in (401, 403):
            codes.add(kind.code)
    assert codes == CALLER_REFUSALS


def test_the_body_limit_is_the_backends_and_a_larger_body_never_reaches_it(front, stand_in):
    assert checks.MAX_BODY == defaults.MAX_BODY
    body = b'{"pad": "' + b"x" * defaults.MAX_BODY + b'"}'
    answer = front.post(CHANGES, data=body, headers=signed("POST", CHANGES, body))
    assert answer.status_code == 413 and stand_in.seen == []


@pytest.mark.parametrize("query", ["status=a&status=b", "a%2Fb=1", "a+b=1", "q=%FF%FE\x7f"])
def test_a_query_fc_could_not_sign_as_sent_is_refused_before_the_backend(front, stand_in, query):
    answer = front.get(f"{CHANGES}?{query}", headers=signed("GET", CHANGES))
    assert answer.status_code == 400 and list(answer.get_json()["fields"]) == ["query"]
    assert stand_in.seen == []


@pytest.mark.parametrize("change_id", ["chg%2F..", "chg%20x", "x" * 65])
def test_a_change_id_a_path_would_carry_encoded_is_not_relayed(front, stand_in, change_id):
    answer = front.get(f"{CHANGES}/{change_id}", headers=signed("GET", CHANGES))
    assert answer.status_code == 404 and stand_in.seen == []


def test_a_change_whose_outcome_is_unknown_is_safe_to_send_again(tmp_path):
    down = frontend_for("http://127.0.0.1:1", tmp_path)
    posted = down.post(CHANGES, data=ODD_BODY, headers=signed("POST", CHANGES, ODD_BODY))
    listed = down.get(CHANGES, headers=signed("GET", CHANGES))
    assert posted.status_code == listed.status_code == 503
    assert "same request_id" in posted.get_json()["message"]["en"]
    assert "request_id" not in listed.get_json()["message"]["en"]


# Through Function Compute's front door to the real backend, with an app of its own.


@pytest.fixture
def changes_backend(config, database, clock):
    """The backend, with an application ``itsm``: (app, key, secret)."""
    app = create_backend(config, clock=clock, kick=lambda: None)
    with database.transaction() as connection:
        made = apps.create(connection, "itsm", clock())
    yield app, made.app_key, made.secret
    app.extensions["database"].dispose()


def app_signed(caller, clock, method: str, target: str, body: bytes = b"", **options):
    """Headers of ``caller`` (app, key, secret) signing at the backend's time."""
    _, key, secret = caller
    now_ms = int(clock().timestamp() * 1000)
    content_type = "application/json" if body else None
    return signed_headers(key, secret, method, target, body, content_type, now_ms=now_ms, **options)


@pytest.fixture
def door():
    return FcFrontDoor([FRONTEND])


@pytest.fixture
def trigger(door, changes_backend):
    server = LiveServer(door.trigger("dingpass-backend", changes_backend[0]))
    yield server
    server.stop()


def test_a_signed_change_goes_through_fc_to_the_backend_and_back(
    trigger, door, changes_backend, clock, tmp_path
):
    front = frontend_for(trigger.url, tmp_path)
    body = json.dumps(INSTANCE).encode()
    headers = {**app_signed(changes_backend, clock, "POST", CHANGES, body), **FRONTEND.headers()}
    answer = front.post(CHANGES, data=body, headers=headers)
    assert answer.status_code == 202, answer.get_json()
    assert answer.headers["Location"] == f"{CHANGES}/{answer.get_json()['id']}"
    assert answer.headers["Idempotent-Replayed"] == "false"
    assert [s["name"] for s in answer.get_json()["steps"]] == [
        "vpc",
        "vswitch",
        "security_group",
        "instance",
    ]
    assert door.passed == ["dingpass-backend"] and door.refused == []


def test_a_listing_with_a_query_passes_fcs_signature_check(
    trigger, door, changes_backend, clock, tmp_path
):
    target = f"{CHANGES}?status=planned&limit=5&since=2026-01-01T00%3A00%3A00Z"
    headers = {**app_signed(changes_backend, clock, "GET", target), **FRONTEND.headers()}
    answer = frontend_for(trigger.url, tmp_path).get(target, headers=headers)
    assert answer.status_code == 200 and answer.get_json() == {"changes": [], "next_cursor": None}
    assert door.passed == ["dingpass-backend"]


def test_a_callers_wrong_signature_through_fc_is_the_callers_401(
    trigger, door, changes_backend, clock, tmp_path
):
    headers = {**app_signed(changes_backend, clock, "GET", CHANGES), **FRONTEND.headers()}
    headers["X-Ca-Signature"] = "c2lnbmVkIGJ5IHNvbWVib2R5IGVsc2U="
    answer = frontend_for(trigger.url, tmp_path).get(CHANGES, headers=headers)
    assert answer.status_code == 401 and answer.get_json()["error"] == "signature_mismatch"
    assert answer.headers["X-Ca-Error-Message"].startswith("Invalid Signature, Server")
    assert door.passed == ["dingpass-backend"]


@pytest.fixture
def fc2_door():
    return FcFrontDoor([FC2_FRONTEND])


@pytest.fixture
def fc2_front(fc2_door, changes_backend, tmp_path):
    """The frontend, naming the backend on FC 2.0's endpoint as template.yml does."""
    endpoint = LiveServer(fc2_door.fc2_endpoint({"dingpass/backend": changes_backend[0]}))
    yield frontend_for(endpoint.url + FC2_BACKEND, tmp_path)
    endpoint.stop()


def test_fc2_a_change_with_the_callers_own_date_goes_through(
    fc2_front, fc2_door, changes_backend, clock
):
    body = json.dumps(INSTANCE).encode()
    date = formatdate(time.time(), usegmt=True)  # FC 2.0's gateway checks it against its clock
    headers = app_signed(changes_backend, clock, "POST", f"{CHANGES}?dryRun=false", body, date=date)
    answer = fc2_front.post(
        f"{CHANGES}?dryRun=false", data=body, headers={**headers, **FC2_FRONTEND.headers()}
    )
    assert answer.status_code == 202, answer.get_json()
    assert fc2_door.passed == ["dingpass/backend"] and fc2_door.refused == []


@pytest.mark.parametrize(
    ("header", "value"),
    [("Date", "Wed, 09 May 2018 13:30:29 GMT"), ("Date", "yesterday"), ("Content-MD5", "AAAA")],
)
def test_fc2_a_header_its_gateway_would_refuse_is_the_callers_400(
    fc2_front, fc2_door, changes_backend, clock, header, value
):
    body = json.dumps(INSTANCE).encode()
    headers = {**app_signed(changes_backend, clock, "POST", CHANGES, body), header: value}
    answer = fc2_front.post(CHANGES, data=body, headers={**headers, **FC2_FRONTEND.headers()})
    assert answer.status_code == 400 and list(answer.get_json()["fields"]) == [header]
    assert fc2_door.passed == fc2_door.refused == []


def test_the_deploy_guides_check_lists_changes_through_the_relay(config, database, tmp_path):
    """docs/deploy.md's openssl-and-curl check, run as written against a live frontend."""
    guide = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    script = re.search(r"\*Check:\* list your changes.*?```sh\n(.*?)```", guide, re.S)[1]
    backend = create_backend(config, kick=lambda: None)  # the real clock, as curl's
    with database.transaction() as connection:
        made = apps.create(connection, "itsm", datetime.now(timezone.utc))
    servers = [LiveServer(backend)]
    servers.append(LiveServer(frontend_for(servers[0].url, tmp_path).application))
    given = f"KEY={made.app_key} SECRET={made.secret} URL={servers[1].url}"
    script = script.replace("KEY=… SECRET=… URL=https://YOUR-DOMAIN", given)
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    for server in servers:
        server.stop()
    backend.extensions["database"].dispose()
    assert json.loads(done.stdout) == {"changes": [], "next_cursor": None}, done.stderr
