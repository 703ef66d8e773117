"""Change callbacks: the caller told when its change ends, signed with its app's secret, sent
again while the receiver is down, never redirected, never into private addresses unless allowed.

Changes run through the real runner with the fake plugins of test_changes.py; the receiver
is a real HTTP(S) server on loopback. On SQLite and MariaDB.
"""

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass, replace
from datetime import timedelta

import pytest
from cryptography import x509
from sqlalchemy import select
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from backend.apps import store as apps
from backend.changes import callbacks, outcome
from backend.changes import steps as change_steps
from backend.changes.callbacks import (
    CALLBACK_RETRY,
    CallbackRefused,
    CallbackSender,
    CallbackUnavailable,
    notification,
    public,
    sign,
)
from backend.changes.context import ChangeContext
from backend.changes.names import CALLBACK_KIND
from backend.changes.service import Changes
from backend.changes.types import change_types
from backend.jobs.registry import Registry
from backend.services import Services
from backend.storage import changes as store
from backend.storage.schema import jobs
from backend.work import runner, services
from tests.app_signing import signed_headers
from tests.certificates import self_signed
from tests.conftest import free_port
from tests.integration.conftest import LiveServer
from tests.integration.fake_cloud import FakeCloud, fake_plugins
from tests.integration.test_openapi import SPEC, validator

DESCRIBED = SPEC["paths"]["/api/v1/changes"]["post"]["callbacks"]["changeEnded"][
    "{$request.body#/callback_url}"
]["post"]


@dataclass(frozen=True)
class Call:
    """One request the receiver took."""

    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A callback receiver: records each request, answers from ``answers`` (then 200)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.answers: list[Response] = []
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        request = Request(environ)
        with self.lock:
            self.calls.append(
                Call(request.full_path.removesuffix("?"), dict(request.headers), request.get_data())
            )
            answer = self.answers.pop(0) if self.answers else Response("ok")
        return answer(environ, start_response)


@pytest.fixture
def receiver():
    """The receiver, on a loopback port: (receiver, its base URL)."""
    app = Receiver()
    server = LiveServer(app)
    yield app, server.url
    server.stop()


@pytest.fixture
def itsm(database, clock):
    """The calling app, with its secret."""
    with database.transaction() as connection:
        return apps.create(connection, "itsm", clock())


@pytest.fixture
def fake() -> FakeCloud:
    return FakeCloud()


@pytest.fixture
def changes(database, clock, fake) -> Changes:
    plugins = fake_plugins(fake)
    return Changes(database, change_types(plugins), plugins, clock)


def runner_for(config, database, clock, fake, private: bool):
    """A runner of change steps and callbacks; ``private``: callbacks may reach loopback."""
    kinds: Registry[Services] = Registry()
    kinds.include(change_steps.kinds)
    kinds.include(callbacks.kinds)
    context = ChangeContext(fake_plugins(fake), cloud=None)  # type: ignore[arg-type] -- no cloud
    made = services(config, database, {}, None, clock)
    made = replace(made, changes=context, callbacks_may_reach_private=private)
    return runner(config, made, kinds)


@pytest.fixture
def work(config, database, clock, fake):
    """The runner, callbacks allowed to loopback (where the receiver is)."""
    return runner_for(config, database, clock, fake, private=True)


def run_change(changes, work, clock, app, callback_url: str | None):
    """Submit a VPC change for ``app`` with ``callback_url``, and run it to its end."""
    request = {"type": "vpc", "request_id": "ITSM-7", "spec": {}}
    if callback_url is not None:
        request["callback_url"] = callback_url
    change = changes.submit(app.id, request).change
    for _ in range(6):
        work.run_due()
        if changes.get(app.id, change.public_id).ended:
            break
        clock.advance(2)
    return changes.get(app.id, change.public_id)


def callback_job(database):
    with database.transaction() as connection:
        rows = connection.execute(select(jobs).where(jobs.c.kind == CALLBACK_KIND)).mappings()
        return [dict(row) for row in rows]


def test_the_body_is_the_change_as_get_shows_it(changes, work, clock, itsm, receiver, backend):
    app, url = receiver
    change = run_change(changes, work, clock, itsm, f"{url}/hooks/dingpass?token=t1")

    path = f"/api/v1/changes/{change.public_id}"
    stamp = int(clock().timestamp() * 1000)
    headers = signed_headers(
        itsm.app_key, itsm.secret, "GET", f"http://localhost{path}", now_ms=stamp
    )
    shown = backend.test_client().get(path, headers=headers).get_json()
    (call,) = app.calls
    assert call.path == "/hooks/dingpass?token=t1"
    assert json.loads(call.body) == {"event": "change.ended", "change": shown}
    assert shown["status"] == "succeeded" and shown["callback_url"].endswith("token=t1")


def test_the_headers_name_the_event_the_delivery_and_the_time(changes, work, clock, itsm, receiver):
    app, url = receiver
    change = run_change(changes, work, clock, itsm, f"{url}/hook")

    headers = app.calls[0].headers
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Dingpass-Event"] == "change.ended"
    assert headers["X-Dingpass-Delivery"] == f"{change.public_id}-ended"
    assert headers["X-Dingpass-Timestamp"] == str(int(clock().timestamp()))


def test_the_signature_is_the_apps_hmac_of_the_timestamp_and_the_body(
    changes, work, clock, itsm, receiver
):
    app, url = receiver
    run_change(changes, work, clock, itsm, f"{url}/hook")

    call = app.calls[0]
    signed = call.headers["X-Dingpass-Timestamp"].encode() + b"." + call.body
    expected = "sha256=" + hmac.new(itsm.secret.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(call.headers["X-Dingpass-Signature"], expected)


def test_the_notification_is_the_callback_the_openapi_description_describes(
    changes, work, clock, itsm, receiver
):
    app, url = receiver
    run_change(changes, work, clock, itsm, f"{url}/hook")

    call = app.calls[0]
    validator({"$ref": "#/components/schemas/ChangeEnded"}).validate(json.loads(call.body))
    for header in DESCRIBED["parameters"]:
        validator(header["schema"]).validate(call.headers[header["name"]])


def test_the_described_signature_example_is_what_dingpass_signs():
    example = DESCRIBED["x-signature-example"]
    signed = sign(example["app_secret"], example["timestamp"], example["body"].encode())

    assert signed == example["signature"]
    described = DESCRIBED["requestBody"]["content"]["application/json"]["examples"]
    assert json.loads(example["body"]) == described["succeeded"]["value"]
    validator({"$ref": "#/components/schemas/ChangeEnded"}).validate(json.loads(example["body"]))


def test_a_failed_change_is_told_with_its_error(changes, work, clock, itsm, receiver, fake):
    app, url = receiver
    fake.refuse["vpc"] = "QuotaExceeded.Vpc"
    run_change(changes, work, clock, itsm, f"{url}/hook")

    told = json.loads(app.calls[0].body)["change"]
    assert told["status"] == "failed" and "QuotaExceeded.Vpc" in told["error"]


@pytest.mark.parametrize("status", [500, 503, 429, 408])
def test_a_busy_receiver_gets_it_again_with_the_same_delivery_id(
    changes, work, clock, itsm, receiver, database, status
):
    app, url = receiver
    app.answers.append(Response("busy", status=status))
    run_change(changes, work, clock, itsm, f"{url}/hook")
    assert callback_job(database)[0]["status"] == "queued"

    clock.advance(CALLBACK_RETRY.first.total_seconds())
    work.run_due()

    (job,) = callback_job(database)
    assert (job["status"], job["attempts"]) == ("succeeded", 2)
    first, again = (call.headers["X-Dingpass-Delivery"] for call in app.calls)
    assert first == again


def test_a_404_fails_the_job_at_once_saying_what_the_receiver_answered(
    changes, work, clock, itsm, receiver, database
):
    app, url = receiver
    app.answers.append(Response("no such hook", status=404))
    change = run_change(changes, work, clock, itsm, f"{url}/hook")
    clock.advance(3600)
    work.run_due()

    (job,) = callback_job(database)
    assert (job["status"], job["attempts"], len(app.calls)) == ("failed", 1, 1)
    assert "refused" in job["last_error"] and "HTTP 404: 'no such hook'" in job["last_error"]
    assert change.status == "succeeded"  # the callback's failure is not the change's


def test_a_redirect_is_not_followed_and_fails_the_job(
    changes, work, clock, itsm, receiver, database
):
    app, url = receiver
    app.answers.append(Response(status=302, headers={"Location": f"{url}/elsewhere"}))
    run_change(changes, work, clock, itsm, f"{url}/hook")

    (job,) = callback_job(database)
    assert [call.path for call in app.calls] == ["/hook"]
    assert job["status"] == "failed"
    assert f"HTTP 302, a redirect to '{url}/elsewhere'" in job["last_error"]


def test_a_receiver_that_does_not_answer_is_tried_again(changes, work, clock, itsm, database):
    run_change(changes, work, clock, itsm, f"http://127.0.0.1:{free_port()}/hook")

    (job,) = callback_job(database)
    assert job["status"] == "queued" and job["attempts"] == 1
    assert "did not answer" in job["last_error"] and "/hook" not in job["last_error"]


@pytest.mark.parametrize(
    ("private", "calls", "status"), [(False, 0, "failed"), (True, 1, "succeeded")]
)
def test_a_loopback_callback_is_sent_only_when_private_addresses_are_allowed(
    changes, config, database, clock, fake, itsm, receiver, private, calls, status
):
    app, url = receiver
    work = runner_for(config, database, clock, fake, private=private)
    run_change(changes, work, clock, itsm, f"{url}/hook")

    (job,) = callback_job(database)
    assert (len(app.calls), job["status"]) == (calls, status)
    if not private:
        assert "127.0.0.1, not a public address" in job["last_error"]


def test_each_attempt_logs_one_line_with_the_host_and_status_and_no_secret(
    changes, work, clock, itsm, receiver, caplog
):
    app, url = receiver
    caplog.set_level("DEBUG", logger="backend.changes.callbacks")
    change = run_change(changes, work, clock, itsm, f"{url}/hook?token=t1")

    (line,) = [r.getMessage() for r in caplog.records if r.name == "backend.changes.callbacks"]
    assert line == f"callback {change.public_id}-ended to 127.0.0.1: HTTP 200"


def test_a_change_without_a_callback_url_records_no_callback(changes, work, clock, itsm, database):
    change = run_change(changes, work, clock, itsm, None)

    assert change.status == "succeeded"
    assert callback_job(database) == []


def test_a_callback_job_for_a_change_without_callback_url_sends_nothing(
    changes, work, clock, itsm, database, receiver
):
    change = run_change(changes, work, clock, itsm, None)
    with database.transaction() as connection:
        ended = replace(store.by_id(connection, change.id), callback_url=f"{receiver[1]}/x")
        outcome.ended(connection, ended, ended.status, clock())  # recorded; the row has none
    work.run_due()

    assert callback_job(database)[0]["status"] == "succeeded" and receiver[0].calls == []


# The sender on its own: which addresses it refuses, and that it connects to the one checked.

REFUSED = [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.9",
    "192.168.1.1",
    "169.254.169.254",
    "100.100.100.200",  # Alibaba Cloud's metadata service, in the shared 100.64.0.0/10
    "0.0.0.0",  # noqa: S104 -- an address refused, not one bound to
    "224.0.0.1",
    "240.0.0.1",
    "::1",
    "::",
    "fe80::1",
    "fd00::1",
    "ff02::1",
    "::ffff:127.0.0.1",
]


@pytest.mark.parametrize("address", REFUSED)
def test_addresses_outside_the_internet_are_not_public(address):
    assert not public(address)


@pytest.mark.parametrize("address", ["47.96.1.2", "8.8.8.8", "2400:3200::1"])
def test_internet_addresses_are_public(address):
    assert public(address)


def note_to(url: str, changes, itsm):
    """A notification to ``url`` of a new change (its content does not matter here)."""
    change = changes.submit(itsm.id, {"type": "vpc", "request_id": "r", "spec": {}}).change
    return notification(replace(change, callback_url=url), itsm.secret, change.created_at)


def test_every_address_of_the_host_is_checked(changes, itsm):
    sender = CallbackSender(resolve=lambda host, port: ["47.96.1.2", "10.0.0.8"])

    with pytest.raises(CallbackRefused, match=r"hooks\.example resolves to 10\.0\.0\.8,"):
        sender.send(note_to("https://hooks.example/hook", changes, itsm))


def test_the_request_goes_to_the_address_checked_named_as_the_urls_host(changes, itsm, receiver):
    app, url = receiver
    port = url.rsplit(":", 1)[1]
    sender = CallbackSender(allow_private=True, resolve=lambda host, port: ["127.0.0.1"])

    answer = sender.send(note_to(f"http://hooks.invalid:{port}/hook", changes, itsm))

    assert answer.status == 200
    assert app.calls[0].headers["Host"] == f"hooks.invalid:{port}"


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """A certificate for hooks.test alone: (server context, CA file)."""
    names = [x509.DNSName("hooks.test")]
    return self_signed(tmp_path_factory.mktemp("tls"), "hooks.test", names)


@pytest.fixture
def tls_receiver(tls):
    """The receiver over HTTPS on loopback, as hooks.test: (receiver, port)."""
    app = Receiver()
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=tls[0])
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    yield app, server.server_port
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("host", "taken"), [("hooks.test", True), ("other.test", False)])
def test_tls_to_the_address_checked_verifies_the_urls_host_name(
    changes, itsm, tls, tls_receiver, host, taken
):
    app, port = tls_receiver
    sender = CallbackSender(allow_private=True, resolve=lambda h, p: ["127.0.0.1"], verify=tls[1])
    note = note_to(f"https://{host}:{port}/hook", changes, itsm)

    if taken:
        assert sender.send(note).status == 200
    else:
        with pytest.raises(CallbackUnavailable, match="SSLError"):
            sender.send(note)
    assert len(app.calls) == int(taken)


def unresolved(host: str, port: int) -> list[str]:
    raise OSError(f"{host}: Name or service not known")


def test_a_host_that_does_not_resolve_is_tried_again_later(changes, itsm):
    sender = CallbackSender(resolve=unresolved)

    with pytest.raises(CallbackUnavailable, match="could not be resolved"):
        sender.send(note_to("https://hooks.invalid/hook", changes, itsm))


def test_the_first_retry_comes_within_ten_seconds_and_they_stop_after_a_day():
    assert CALLBACK_RETRY.delay(1) <= timedelta(seconds=10)
    assert CALLBACK_RETRY.delay(100) <= timedelta(minutes=10)
    assert CALLBACK_RETRY.gives_up(50, timedelta(hours=24))
