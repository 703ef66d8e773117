"""Redeeming an activation code on the QR page, in a real browser at phone size: a typo caught
before anything is sent, the license mailed without an approval, the code refused the second
time."""

import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from backend.app import create_app
from backend.catalogue import load_catalogue
from backend.config import Config
from backend.storage import migrate
from backend.storage.database import Database, make_engine
from backend.storage.schema import applications
from backend.work import runner as build_runner
from backend.work import services
from frontend.app import create_app as create_frontend
from frontend.config import STATIC_DIR, FrontendConfig
from license import codes
from sandbox.mail import MailSandbox
from tests.conftest import CATALOGUE, VECTORS
from tests.e2e.test_apply_page import SlowAnswers
from tests.integration.conftest import SECRET, LiveServer
from tests.integration.test_frontend import CODE_HASH_KEY, a_batchs_code

FEATURE = "9F2C-41AB-77D0-E5C3"
APPLY = f"/apply?product=acme-erp&feature={FEATURE}&version=8.2"
TYPO = "激活码有输入错误，请逐个字符核对。"
DINGPASS = Path(sys.executable).parent / "dingpass"


@pytest.fixture
def mailbox() -> Iterator[MailSandbox]:
    sandbox = MailSandbox().start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def settings(tmp_path, mailbox) -> Config:
    """The backend's settings: a fresh SQLite database, the mail sandbox, the test keys."""
    database = f"sqlite:///{tmp_path}/dingpass.db"
    migrate.upgrade(make_engine(database))
    return Config(
        database_url=database,
        proxy_secret=SECRET,
        catalogue_file=CATALOGUE,
        smtp_port=mailbox.smtp_port,
        license_signing_key=str(VECTORS / "test-signing-key.pem"),
        code_hash_key=CODE_HASH_KEY,
        var_dir=tmp_path / "var",
    )


def serve(backend_app, timeout: float = 10.0) -> list[LiveServer]:
    """The backend app and a frontend before it (BACKEND_TIMEOUT ``timeout``), served."""
    if not (STATIC_DIR / "index.html").exists():
        pytest.fail("the page is not built: run `make test`, which builds vue-app first")
    backend = LiveServer(backend_app)
    front_config = FrontendConfig(
        backend_url=backend.url,
        proxy_secret=SECRET,
        catalogue_file=CATALOGUE,
        backend_timeout=timeout,
    )
    return [backend, LiveServer(create_frontend(front_config))]


@pytest.fixture
def site(settings) -> Iterator[str]:
    """The frontend's URL, with the backend behind it."""
    servers = serve(create_app(settings))
    yield servers[1].url
    for server in servers:
        server.stop()


@pytest.fixture
def slow_site(settings) -> Iterator[tuple[str, SlowAnswers]]:
    """The frontend (BACKEND_TIMEOUT 1 s) before a backend whose first answer comes too late."""
    backend = SlowAnswers(create_app(settings), late=1)
    servers = serve(backend, timeout=1.0)
    yield servers[1].url, backend
    for server in servers:
        server.stop()


@pytest.fixture
def code(settings) -> str:
    """An unused code of a batch for acme-erp: quantity 10, 45 days."""
    database = Database(settings.database)
    with database.transaction() as connection:
        made = a_batchs_code(connection, settings, utc_now())
    database.dispose()
    return made


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def run_the_runner(settings: Config) -> None:
    """Run the due jobs, as the runner's timer would."""
    database = Database(settings.database)
    context = services(settings, database, load_catalogue(CATALOGUE), None, utc_now)
    build_runner(settings, context).run_due()
    database.dispose()


def fill_the_form(page: Page, email: str) -> None:
    page.get_by_label("我有激活码").check()
    page.get_by_label("公司名称").fill("杭州示例网络科技有限公司")
    page.get_by_label("联系人").fill("张三")
    page.get_by_label("邮箱").fill(email)


def mistyped(code: str) -> str:
    """``code`` with its twelfth symbol wrong."""
    compact = code.replace("-", "")
    return compact[:11] + ("7" if compact[11] != "7" else "8") + compact[12:]


def as_a_person_types(code: str) -> str:
    """``code`` in lower case with spaces for dashes, l for 1 and o for 0."""
    return code.lower().replace("-", " ").replace("1", "l").replace("0", "o")


def verified(license_file: Path, tmp_path: Path) -> str:
    """What `dingpass license verify` says of the file, which must verify."""
    done = subprocess.run(
        [
            DINGPASS,
            "license",
            "verify",
            str(license_file),
            "--public-key",
            str(VECTORS / "test-public-key.pem"),
            "--feature-code",
            FEATURE,
            "--product",
            "acme-erp",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_code_with_a_typo_is_caught_at_once_then_redeemed_mailed_and_refused_again(
    site, settings, code, mailbox, phone, tmp_path
):
    sent: list[str] = []
    phone.on("request", lambda r: "/api/redemptions" in r.url and sent.append(r.url))
    phone.goto(site + APPLY)
    fill_the_form(phone, email="zhang@example.com")
    expect(phone.get_by_label("数量")).to_have_count(0)
    expect(phone.get_by_label("有效期")).to_have_count(0)
    field = phone.get_by_label("激活码", exact=True)
    field.press_sequentially(mistyped(code).lower())
    expect(field).to_have_value(re.compile(r"^([0-9A-Z]{5}-){3}[0-9A-Z]{5}$"))
    field.press("Tab")
    expect(phone.locator("#f-code-error")).to_have_text(TYPO)
    phone.get_by_role("button", name="使用激活码获取许可").click()
    expect(field).to_be_focused()
    expect(phone.get_by_role("alert")).to_contain_text("有 1 处需要修改")
    phone.shot("1-typo")
    assert sent == []

    field.fill("")
    field.press_sequentially(as_a_person_types(code))
    phone.get_by_role("button", name="使用激活码获取许可").click()
    expect(phone.get_by_role("heading", name="激活码已兑换")).to_be_visible()
    expect(phone.get_by_test_id("number")).to_have_text(re.compile(r"^A\d{8}-[0-9A-Z]{6}$"))
    assert len(sent) == 1
    phone.shot("2-redeemed")

    run_the_runner(settings)
    phone.get_by_role("link", name="查看申请进度").click()
    expect(phone.get_by_test_id("status")).to_have_text("许可已发送")
    phone.shot("3-status")

    phone.goto(mailbox.url)
    phone.locator("a.mail").first.click()
    with phone.expect_download() as download:
        phone.get_by_role("link", name=re.compile(r"^acme-erp-.+\.lic$")).click()
    license_file = tmp_path / download.value.suggested_filename
    download.value.save_as(license_file)
    assert "is valid: acme-erp for 杭州示例网络科技有限公司, quantity 10" in verified(
        license_file, tmp_path
    )

    phone.goto(site + APPLY)
    fill_the_form(phone, email="li@example.com")
    phone.get_by_label("激活码", exact=True).fill(code)
    phone.get_by_role("button", name="使用激活码获取许可").click()
    expect(phone.locator("#f-code-error")).to_have_text("该激活码已被使用。")
    phone.shot("4-used")


def test_in_english_a_missing_character_is_told_at_once_and_an_unknown_code_by_the_server(
    site, english_desktop
):
    page = english_desktop
    page.goto(site + APPLY)
    page.get_by_label("I have an activation code").check()
    expect(page.get_by_role("button", name="Get the license with this code")).to_be_visible()
    field = page.get_by_label("Activation code", exact=True)
    field.fill(codes.generate()[:-1])
    field.press("Tab")
    expect(page.locator("#f-code-error")).to_have_text(
        "An activation code has 20 characters, this one 19: check that none is missing."
    )
    field.fill(codes.generate())  # well formed, but of no batch
    page.get_by_label("Company").fill("Acme Trading Ltd")
    page.get_by_label("Contact name").fill("Li Lei")
    page.get_by_label("Email").fill("li@example.com")
    page.get_by_role("button", name="Get the license with this code").click()
    expect(page.locator("#f-code-error")).to_have_text(
        "There is no such activation code; check it and try again."
    )
    page.get_by_role("button", name="中文").click()
    expect(page.locator("#f-code-error")).to_have_text("没有这个激活码，请核对后重试。")


def test_a_redemption_whose_answer_was_lost_is_retried_under_its_key_and_redeemed_once(
    slow_site, settings, code, phone
):
    url, backend = slow_site
    phone.goto(url + APPLY)
    fill_the_form(phone, email="sun@example.com")
    phone.get_by_label("激活码", exact=True).fill(code)
    phone.get_by_role("button", name="使用激活码获取许可").click()
    expect(phone.get_by_test_id("retrying")).to_contain_text("正在自动重试")
    expect(phone.get_by_role("heading", name="激活码已兑换")).to_be_visible()
    phone.shot("redeemed-after-a-retry")
    assert len(backend.keys) == 2 and backend.keys[0] == backend.keys[1] is not None
    database = Database(settings.database)
    with database.transaction() as connection:
        numbers = connection.execute(select(applications.c.number)).scalars().all()
    database.dispose()
    assert numbers == [phone.get_by_test_id("number").inner_text()]


def test_a_character_typed_inside_the_code_keeps_the_caret_after_it(site, phone):
    phone.goto(site + APPLY)
    phone.get_by_label("我有激活码").check()
    field = phone.get_by_label("激活码", exact=True)
    field.press_sequentially("7kq2m9xhzp3r")
    field.press("Home")
    for _ in range(8):  # after "7KQ2M-9X"
        field.press("ArrowRight")
    field.press_sequentially("aa")
    expect(field).to_have_value("7KQ2M-9XAAH-ZP3R")
    caret = field.evaluate("input => input.selectionStart")
    assert caret == len("7KQ2M-9XAA")
