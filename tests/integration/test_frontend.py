"""The public function: its proxy to a live backend, QR codes, the page's caching."""

import dataclasses
import json
import socket
import time
from datetime import datetime, timedelta

import pytest
from flask import g
from sqlalchemy import Connection

from backend.app import create_app as create_backend
from backend.codes.hashing import code_hash, hash_key
from backend.config import Config
from backend.storage.codes import insert_batch, insert_hashes
from frontend.app import create_app as create_frontend
from frontend.backend_client import BackendClient
from frontend.config import FrontendConfig
from frontend.exceptions import BackendTimeout, BackendUnavailable, FrontendConfigError
from license import codes
from tests.conftest import CATALOGUE, VECTORS
from tests.integration.conftest import SECRET, LiveServer, a_form

DOWN = "http://127.0.0.1:1"
"""A backend address nothing answers at, for clients whose calls never leave the test."""


def frontend_for(backend_url: str, tmp_path, timeout: float = 2.0, hops: int = 0, backend=None):
    static = tmp_path / "static"
    (static / "assets").mkdir(parents=True, exist_ok=True)
    (static / "index.html").write_text("<!doctype html><title>apply</title>")
    (static / "assets" / "index-3f9a1c.js").write_text("console.log(1)")
    config = FrontendConfig(
        public_base_url="https://apply.example.com",
        backend_url=backend_url,
        proxy_secret=SECRET,
        catalogue_file=CATALOGUE,
        backend_timeout=timeout,
        static_dir=static,
        trusted_proxy_hops=hops,
    )
    return create_frontend(config, backend).test_client()


@pytest.fixture
def front(live_backend, tmp_path):
    return frontend_for(live_backend.url, tmp_path)


@pytest.fixture
def no_backend(tmp_path):
    """The frontend alone, for what it answers by itself (QR codes, files)."""
    return frontend_for("http://127.0.0.1:1", tmp_path)


def submit(client, form=None, **environ):
    return client.post("/api/applications", json=form or a_form(), environ_base=environ)


def test_an_application_goes_through_the_proxy_signed(front):
    answer = submit(front)
    assert answer.status_code == 201
    token = answer.get_json()["token"]
    status = front.get(f"/api/applications/{token}")
    assert status.status_code == 200 and status.get_json()["status"] == "submitted"
    assert status.headers["Cache-Control"] == "no-store"


def test_the_backend_sees_the_clients_ip(front, database):
    submit(front, REMOTE_ADDR="198.51.100.23")
    with database.transaction() as connection:
        assert (
            connection.exec_driver_sql("select client_ip from applications").scalar()
            == "198.51.100.23"
        )


def test_behind_a_trusted_proxy_the_forwarded_ip_is_used(live_backend, tmp_path, database):
    client = frontend_for(live_backend.url, tmp_path, hops=1)
    client.post("/api/applications", json=a_form(), headers={"X-Forwarded-For": "192.0.2.44"})
    with database.transaction() as connection:
        assert (
            connection.exec_driver_sql("select client_ip from applications").scalar()
            == "192.0.2.44"
        )


def test_validation_errors_and_rate_limits_pass_through(front):
    assert submit(front, a_form(email="x")).get_json()["fields"]["email"]["en"]
    for n in range(5):
        submit(front, a_form(email=f"n{n}@example.com"))
    limited = submit(front, a_form(email="late@example.com"))
    assert limited.status_code == 429 and limited.headers["Retry-After"].isdigit()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/"),
        ("GET", "/api/healthz"),
        ("GET", "/api/applications"),
        ("POST", "/api/applications/abc"),
        ("GET", "/api/applications/..%2F..%2Fhealthz"),
        ("GET", "/api/applications/short"),
        ("GET", "/api/anything/else"),
        ("DELETE", "/api/applications"),
    ],
)
def test_no_other_path_reaches_the_backend(front, method, path):
    answer = front.open(path, method=method)
    assert answer.status_code in (404, 405)
    assert answer.get_json()["message"]["en"]


def test_a_body_over_16_kb_is_refused(front):
    answer = front.post(
        "/api/applications",
        data=b"{" + b" " * 16 * 1024 + b"}",
        content_type="application/json",
    )
    assert answer.status_code == 413
    assert answer.get_json()["message"]["en"] == "The request is too large (16 KB at most)."


@pytest.mark.parametrize(
    "url",
    [
        "backend:8001",
        "ftp://backend",
        "http://",
        "/api",
        "http://backend:80a",
        "http://b:99999",
        "http://backend .example.com",
        "http://[::1]x",
        "http://exa%mple",
        "http://back\tend:9000",
        "http://user@backend:9000",
        "http://backend..example.com",
        f"https://{'b' * 64}.example.com",
    ],
)
def test_a_backend_url_that_is_not_an_http_url_is_refused_at_start(url):
    with pytest.raises(FrontendConfigError, match="BACKEND_URL is not usable"):
        FrontendConfig.from_env({"BACKEND_URL": url})


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8001",
        "https://backend.example.com/",
        "http://[::1]:9000/path",
        "http://[fe80::1%25eth0]:80",
        "https://1234.cn-hangzhou-internal.fc.aliyuncs.com/2023-03-03/functions/backend",
    ],
)
def test_a_backend_url_the_client_can_use_is_taken(url):
    assert FrontendConfig.from_env({"BACKEND_URL": url}).backend_url == url.rstrip("/")


def test_a_backend_that_is_down_is_a_503_at_once(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    answer = submit(frontend_for(f"http://127.0.0.1:{port}", tmp_path))
    assert answer.status_code == 503 and time.monotonic() - started < 2
    assert answer.get_json()["error"] == "backend_unavailable"
    assert answer.headers["Retry-After"].isdigit()


def test_a_backend_that_hangs_is_a_504_after_the_timeout(tmp_path):
    def hanging(environ, start_response):
        time.sleep(3)
        start_response("200 OK", [])
        return [b"{}"]

    slow = LiveServer(hanging)
    started = time.monotonic()
    answer = submit(frontend_for(slow.url, tmp_path, timeout=0.5))
    elapsed = time.monotonic() - started
    slow.stop()
    assert answer.status_code == 504 and elapsed < 2.5


@pytest.mark.parametrize("status", [503, 504])
def test_a_submission_whose_outcome_is_unknown_says_so_and_that_retrying_is_safe(tmp_path, status):
    class Failing(BackendClient):
        def send(self, *args, **kwargs):
            raise {503: BackendUnavailable, 504: BackendTimeout}[status]("no answer")

    client = frontend_for(DOWN, tmp_path, backend=Failing(DOWN, "", 1))
    answer = submit(client)
    assert answer.status_code == status
    assert answer.get_json()["message"] == {
        "zh": "我们无法确认您的申请是否已收到；可以放心重试。",
        "en": "We could not confirm your application was received; it is safe to try again.",
    }
    status_answer = client.get("/api/applications/abcdefghijklmnopqrstu")
    assert "could not confirm" not in status_answer.get_json()["message"]["en"]


def test_an_unexpected_failure_is_a_500_that_does_not_blame_the_request(tmp_path):
    class Broken(BackendClient):
        def send(self, *args, **kwargs):
            raise RuntimeError("a bug between the frontend and the backend")

    answer = submit(frontend_for(DOWN, tmp_path, backend=Broken(DOWN, "", 1)))
    assert answer.status_code == 500
    assert answer.get_json() == {
        "error": "internal_error",
        "message": {
            "zh": "服务器出错，请稍后再试。",
            "en": "Something went wrong on our side; try again later.",
        },
    }


def test_the_idempotency_key_reaches_the_backend_under_the_signature(backend, tmp_path):
    verified = []
    backend.after_request(lambda response: verified.append(g.idempotency_key) or response)
    server = LiveServer(backend)
    client = frontend_for(server.url, tmp_path)
    key = "0b7c2f3e-5d1a-4c1b-9a53-2f6e8d4c7a10"
    answer = client.post("/api/applications", json=a_form(), headers={"Idempotency-Key": key})
    without = client.post("/api/applications", json=a_form(email="b@example.com"))
    server.stop()
    assert (answer.status_code, without.status_code) == (201, 201)
    assert verified == [key, None]


@pytest.mark.parametrize("key", ["", "has space", "k" * 65, "a/b", "é"])
def test_an_unusable_idempotency_key_is_a_400_on_its_field(front, database, key):
    answer = front.post("/api/applications", json=a_form(), headers={"Idempotency-Key": key})
    assert answer.status_code == 400
    assert answer.get_json()["fields"]["Idempotency-Key"]["en"] == (
        "Idempotency-Key must be 1 to 64 letters, digits, '_' or '-'."
    )


def test_the_page_is_never_cached_and_hashed_assets_are_kept(front):
    page = front.get("/apply?product=acme-erp&feature=9F2C-41AB-77D0-E5C3")
    status = front.get("/status/abcdefghijklmnopqrstuvwx")
    asset = front.get("/assets/index-3f9a1c.js")
    for answer in (page, status, asset):
        answer.close()  # files are streamed
    assert page.status_code == status.status_code == 200
    assert page.headers["Cache-Control"] == "no-cache"
    assert asset.headers["Cache-Control"] == "public, max-age=31536000, immutable"


def test_the_catalogue_for_the_page_leaves_out_entitlements(front):
    products = front.get("/catalogue.json").get_json()["products"]
    assert products["acme-erp"]["validities"] == ["30d", "1y", "3y", "perpetual"]
    assert "entitlements" not in products["acme-erp"] and "edition" not in products["acme-erp"]


def test_the_qr_code_is_an_svg_of_the_apply_link(front):
    answer = front.get("/qr?product=acme-erp&feature=9F2C-41AB-77D0-E5C3&version=8.2")
    assert answer.status_code == 200 and answer.mimetype == "image/svg+xml"
    assert answer.data.startswith(b"<?xml") and b"<path" in answer.data


def test_the_qr_code_as_png(front):
    answer = front.get("/qr?product=acme-erp&feature=9F2C-41AB-77D0-E5C3&format=png")
    assert answer.mimetype == "image/png" and answer.data[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("query", ["", "?product=acme-erp", "?product=a&feature=b&format=gif"])
def test_a_qr_request_without_its_parameters_is_a_400(front, query):
    assert front.get(f"/qr{query}").status_code == 400


def test_a_qr_code_for_a_product_not_in_the_catalogue_is_a_400_that_says_so(no_backend):
    answer = no_backend.get("/qr?product=nope&feature=9F2C-41AB-77D0-E5C3")
    assert answer.status_code == 400
    assert answer.get_json() == {
        "error": "bad_request",
        "message": {
            "zh": "目录中没有产品 'nope'；可用的产品：acme-erp, acme-crm。",
            "en": "The catalogue has no product 'nope'; it has acme-erp, acme-crm.",
        },
        "fields": {"product": {"zh": "未知产品。", "en": "Unknown product."}},
    }


@pytest.mark.parametrize("feature", ["anything", "9F2C-41AB-77D0", "K7Q2M9XHZP3R"])
def test_a_qr_code_for_a_feature_code_the_product_does_not_take_is_a_400(no_backend, feature):
    answer = no_backend.get(f"/qr?product=acme-erp&feature={feature}")
    assert answer.status_code == 400
    assert answer.get_json()["message"]["en"] == (
        f"The feature code {feature!r} does not fit acme-erp's feature codes; "
        "they look like 9F2C-41AB-77D0-E5C3."
    )
    assert list(answer.get_json()["fields"]) == ["feature"]


def test_a_lower_case_feature_code_makes_the_qr_code_of_the_upper_case_link(no_backend):
    lower = no_backend.get("/qr?product=acme-erp&feature=9f2c-41ab-77d0-e5c3")
    upper = no_backend.get("/qr?product=acme-erp&feature=9F2C-41AB-77D0-E5C3")
    assert lower.status_code == 200 and lower.data == upper.data


def test_the_favicon_is_an_icon_browsers_may_keep(no_backend):
    answer = no_backend.get("/favicon.ico")
    icon = answer.get_data()
    answer.close()  # files are streamed
    assert answer.status_code == 200 and answer.mimetype == "image/x-icon"
    assert icon[:4] == b"\x00\x00\x01\x00"  # an ICO file's header
    assert answer.headers["Cache-Control"] == "public, max-age=86400"


def test_the_openapi_description_is_served(front):
    spec = json.loads(front.get("/api/openapi.json").data)
    assert spec["openapi"].startswith("3.1")


CODE_HASH_KEY = "test-code-hash-key-0123456789abcdef0123456789"


def a_batchs_code(connection: Connection, config: Config, now: datetime, **terms) -> str:
    """A batch of one acme-erp code (quantity 10, 45 days, redeemable for a month): the code."""
    code = codes.generate()
    batch = insert_batch(
        connection,
        **{"product": "acme-erp", "quantity": 10, "validity": "45d", **terms},
        valid_from=now - timedelta(days=1),
        valid_until=now + timedelta(days=30),
        size=1,
        created_at=now,
    )
    insert_hashes(connection, batch.id, [code_hash(hash_key(config), code)])
    return code


@pytest.fixture
def redeeming(config, database, clock, tmp_path):
    """The frontend before a backend that redeems codes, and an unused code: (client, code)."""
    settings = dataclasses.replace(
        config,
        code_hash_key=CODE_HASH_KEY,
        license_signing_key=str(VECTORS / "test-signing-key.pem"),
        var_dir=tmp_path / "var",
    )
    app = create_backend(settings, clock=clock)
    server = LiveServer(app)
    with database.transaction() as connection:
        code = a_batchs_code(connection, settings, clock())
    yield frontend_for(server.url, tmp_path), code
    server.stop()
    app.extensions["database"].dispose()


def redeem(client, code: str, key: str | None = None, **changes):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("/api/redemptions", json=a_form(**changes, code=code), headers=headers)


def test_a_redemption_goes_through_the_proxy_and_reads_as_an_application(redeeming):
    client, code = redeeming
    answer = redeem(client, code.lower().replace("-", " "))
    assert answer.status_code == 201 and answer.headers["Cache-Control"] == "no-store"
    status = client.get(f"/api/applications/{answer.get_json()['token']}").get_json()
    assert (status["number"], status["quantity"], status["validity"]) == (
        answer.get_json()["number"],
        10,
        "45d",
    )


def test_a_redemption_retried_under_its_key_is_the_first_answer_not_a_used_code(redeeming):
    client, code = redeeming
    first = redeem(client, code, key="3c1d9a70-5b2e-4f1a-8e6d-0a9b7c5d3e21")
    again = redeem(client, code, key="3c1d9a70-5b2e-4f1a-8e6d-0a9b7c5d3e21")
    other = redeem(client, code, key="9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.get_json()["number"] == first.get_json()["number"]
    assert other.status_code == 422
    assert other.get_json()["fields"]["code"]["en"] == "This activation code has already been used."


def test_the_redemptions_idempotency_key_reaches_the_backend_under_the_signature(backend, tmp_path):
    verified = []
    backend.after_request(lambda response: verified.append(g.idempotency_key) or response)
    server = LiveServer(backend)
    client = frontend_for(server.url, tmp_path)
    # Mistyped codes: refused before any lookup, so no hash key is needed.
    redeem(client, "not-a-code", key="0b7c2f3e-5d1a-4c1b-9a53-2f6e8d4c7a10")
    redeem(client, "not-a-code")
    server.stop()
    assert verified == ["0b7c2f3e-5d1a-4c1b-9a53-2f6e8d4c7a10", None]


def test_a_mistyped_code_is_refused_on_its_field(redeeming):
    client, code = redeeming
    typo = code[:3] + ("A" if code[3] != "A" else "B") + code[4:]
    answer = redeem(client, typo)
    assert answer.status_code == 422
    assert answer.get_json()["fields"]["code"]["en"] == (
        "This activation code has a typing mistake: check each character."
    )


def test_a_redemption_is_taken_as_json_only(no_backend):
    answer = no_backend.post("/api/redemptions", data="code=X", content_type="text/plain")
    assert answer.status_code == 415
    assert answer.get_json()["error"] == "unsupported_media_type"


def test_a_redemption_over_16_kb_is_refused(no_backend):
    answer = no_backend.post("/api/redemptions", json=a_form(note="x" * 16 * 1024, code="x"))
    assert answer.status_code == 413
    assert answer.get_json()["message"]["en"] == "The request is too large (16 KB at most)."


@pytest.mark.parametrize("key", ["", "has space", "k" * 65])
def test_a_redemption_with_an_unusable_idempotency_key_is_a_400(no_backend, key):
    answer = no_backend.post("/api/redemptions", json=a_form(), headers={"Idempotency-Key": key})
    assert answer.status_code == 400
    assert "Idempotency-Key" in answer.get_json()["fields"]


def test_a_redemption_whose_outcome_is_unknown_says_that_retrying_is_safe(tmp_path):
    class Failing(BackendClient):
        def send(self, *args, **kwargs):
            raise BackendTimeout("no answer")

    client = frontend_for(DOWN, tmp_path, backend=Failing(DOWN, "", 1))
    answer = redeem(client, codes.generate())
    assert answer.status_code == 504
    assert "it is safe to try again" in answer.get_json()["message"]["en"]


def test_redemption_answers_match_the_openapi_description(redeeming):
    from tests.integration.test_openapi import check  # it imports this module

    client, code = redeeming
    redeemed = redeem(client, code)
    used = redeem(client, code)
    not_json = client.post("/api/redemptions", data="x", content_type="text/plain")
    assert (redeemed.status_code, used.status_code, not_json.status_code) == (201, 422, 415)
    for answer in (redeemed, used, not_json):
        check(answer, "/api/redemptions", "post")
