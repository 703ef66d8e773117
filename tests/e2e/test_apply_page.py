"""The apply page in a real browser at phone size, from the QR link to the status page."""

import re
import time
from urllib.parse import urljoin

import pytest
from playwright.sync_api import expect

from backend.app import create_app
from backend.config import Config
from backend.storage import migrate
from backend.storage.database import make_engine
from frontend.app import create_app as create_frontend
from frontend.config import STATIC_DIR, FrontendConfig
from tests.conftest import CATALOGUE
from tests.e2e.conftest import ARTIFACTS
from tests.integration.conftest import SECRET, LiveServer

FEATURE = "9F2C-41AB-77D0-E5C3"
APPLY = f"/apply?product=acme-erp&feature={FEATURE}&version=8.2"


def fill_form(
    page, email: str, company: str = "杭州示例网络科技有限公司", quantity: str = "", validity="1y"
) -> None:
    """Fills the form's required fields; a ``quantity`` is typed, else 5 chosen from the list."""
    page.get_by_label("公司名称").fill(company)
    page.get_by_label("联系人").fill("张三")
    page.get_by_label("邮箱").fill(email)
    if quantity:
        page.get_by_label("数量").fill(quantity)
    else:
        page.get_by_label("数量").select_option("5")
    page.get_by_label("有效期").select_option(validity)


def test_apply_from_the_qr_link_to_the_status_page(stack, phone):
    phone.goto(stack + APPLY)
    feature = phone.get_by_label("机器特征码")
    expect(feature).to_have_value(FEATURE)
    expect(feature).to_have_attribute("readonly", "")
    phone.shot("1-prefilled")

    fill_form(phone, email="zhang@")
    phone.get_by_role("button", name="提交申请").click()
    expect(phone.locator("#f-email-error")).to_have_text("请输入有效的邮箱地址。")
    expect(phone.get_by_label("邮箱")).to_be_focused()
    expect(phone.get_by_role("alert")).to_contain_text("有 1 处需要修改")
    phone.shot("2-bad-email")

    phone.get_by_label("邮箱").fill("zhang@example.com")
    phone.get_by_role("button", name="提交申请").click()
    expect(phone.get_by_test_id("number")).to_have_text(re.compile(r"^A\d{8}-[0-9A-Z]{6}$"))
    number = phone.get_by_test_id("number").inner_text()
    phone.shot("3-submitted")

    phone.get_by_role("link", name="查看申请进度").click()
    expect(phone).to_have_url(re.compile(r"/status/[A-Za-z0-9_-]+$"))
    expect(phone.get_by_test_id("status")).to_have_text("已提交")
    expect(phone.get_by_text(f"申请编号: {number}")).to_be_visible()
    phone.shot("4-status")
    assert (ARTIFACTS / "test_apply_from_the_qr_link_to_the_status_page-4-status.png").exists()


def test_script_in_a_company_name_is_shown_as_text_and_never_run(stack, phone):
    company = '<script>alert("x")</script><img src=x onerror=alert("y")>'
    phone.goto(stack + APPLY)
    fill_form(phone, email="zhao@example.com", company=company)
    phone.get_by_role("button", name="提交申请").click()
    phone.get_by_role("link", name="查看申请进度").click()
    expect(phone.get_by_test_id("company")).to_have_text(company)
    phone.shot("status")
    assert phone.dialogs == []


def test_the_backends_field_errors_are_shown_next_to_their_fields(stack, phone):
    phone.goto(stack + "/apply?product=acme-erp&feature=not-a-code")
    fill_form(phone, email="li@example.com")
    phone.get_by_role("button", name="提交申请").click()
    expect(phone.locator("#f-feature_code-error")).to_have_text("格式应类似 9F2C-41AB-77D0-E5C3。")
    phone.shot("feature-error")


def test_the_form_works_from_the_keyboard(stack, phone):
    phone.goto(stack + "/apply?product=acme-crm")
    phone.get_by_label("机器特征码").focus()
    for text in ("K7Q2M9XHZP3R", "Acme Ltd", "Li Lei", "li@acme.io", "", "12"):
        phone.keyboard.type(text)
        phone.keyboard.press("Tab")
    phone.keyboard.press("ArrowDown")  # validity: the first choice
    phone.keyboard.press("Tab")  # to the note
    phone.keyboard.press("Tab")  # to the button
    expect(phone.get_by_role("button", name="提交申请")).to_be_focused()
    phone.keyboard.press("Enter")
    expect(phone.get_by_test_id("number")).to_be_visible()


def test_english_readers_get_english_and_can_switch(stack, english_desktop):
    page = english_desktop
    page.goto(stack + APPLY)
    expect(page.get_by_role("heading", name="Apply for a license")).to_be_visible()
    expect(page.get_by_label("Machine feature code")).to_have_value(FEATURE)
    page.get_by_role("button", name="中文").click()
    expect(page.get_by_role("heading", name="申请软件许可")).to_be_visible()


def test_approving_in_the_sandbox_console_moves_the_status_page_to_approved(dev_stack, browser):
    base = re.search(r"Apply page\s+(\S+)", dev_stack).group(1).split("/apply")[0]
    console_url = re.search(r"Approver\s+(\S+)", dev_stack).group(1)
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    phone, approver = context.new_page(), context.new_page()
    phone.goto(base + APPLY)
    fill_form(phone, email="wang@example.com")
    phone.get_by_role("button", name="提交申请").click()
    phone.get_by_role("link", name="查看申请进度").click()
    # The page asks again every 5 s: if it first saw the application before the runner opened
    # its approval, the next answer may come just after a 5 s wait.
    expect(phone.get_by_test_id("status")).to_have_text("等待审批", timeout=15_000)
    approver.goto(console_url)
    approver.get_by_role("button", name="同意 Approve").click()
    expect(approver.locator(".status").first).to_have_text("COMPLETED · agree")
    approver.screenshot(path=ARTIFACTS / "console-approved.png", full_page=True)
    # It refreshes itself; the runner carries an approval on to "license sent" at once.
    expect(phone.locator(".timeline")).to_contain_text("已批准", timeout=15_000)
    phone.screenshot(path=ARTIFACTS / "status-approved.png", full_page=True)
    context.close()


def printed(stack: str, label: str) -> str:
    return re.search(rf"{label}\s+(\S+)", stack).group(1).rstrip("/")


def apply_and_follow(context, base: str, email: str):
    phone = context.new_page()
    phone.goto(base + APPLY)
    fill_form(phone, email=email)
    phone.get_by_role("button", name="提交申请").click()
    number = phone.get_by_test_id("number").inner_text()
    phone.get_by_role("link", name="查看申请进度").click()
    # The page asks again every 5 s: if it first saw the application before the runner opened
    # its approval, the next answer may come just after a 5 s wait.
    expect(phone.get_by_test_id("status")).to_have_text("等待审批", timeout=15_000)
    return phone, number


def decide_in_console(context, console: str, number: str, button: str, shows: str) -> None:
    """Decide as the approver would; returns once the console shows the decision."""
    approver = context.new_page()
    approver.goto(console)
    instance = approver.locator(".instance", has_text=number)
    instance.get_by_role("button", name=button).click()
    # Chromium can drop a close that races a navigation's commit, and page.close()
    # then waits forever (crbug.com/536385539; it hung CI here): close only once the
    # console has loaded again and shows the decision.
    expect(instance.locator(".status")).to_have_text(shows)
    approver.close()


def test_the_whole_path_approve_then_the_license_arrives_and_verifies(dev_stack, browser, tmp_path):
    from license import key_ring, verify
    from license.keys import load_private_key

    base, console, inbox = (
        printed(dev_stack, "Apply page").split("/apply")[0],
        printed(dev_stack, "Approver"),
        printed(dev_stack, "Inbox"),
    )
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    phone, number = apply_and_follow(context, base, "zhao@example.com")
    decide_in_console(context, console, number, "同意 Approve", "COMPLETED · agree")
    expect(phone.get_by_test_id("status")).to_have_text("许可已发送", timeout=15_000)
    phone.screenshot(path=ARTIFACTS / "whole-path-1-status-delivered.png", full_page=True)

    mail = context.new_page()
    mail.goto(inbox)
    mail.get_by_text(f"您的软件许可：Acme ERP 企业版（{number}）").click()
    expect(mail.get_by_text("您为 杭州示例网络科技有限公司 申请的软件许可已批准")).to_be_visible()
    mail.screenshot(path=ARTIFACTS / "whole-path-2-mail.png", full_page=True)
    link = mail.get_by_role("link", name=re.compile(r"acme-erp-L\d{8}-\w+\.lic"))
    # Fetched as the browser would save it, without its download machinery (CI hung in it once).
    attachment = context.request.get(urljoin(mail.url, link.get_attribute("href")))
    assert attachment.headers["content-disposition"] == (
        f'attachment; filename="{link.inner_text()}"'
    )
    text = attachment.text()
    context.close()

    key = load_private_key(str(tmp_path / "var" / "dev-license-key.pem"))
    lic = verify(text, key_ring([key.public_key()]), feature_code=FEATURE, product="acme-erp")
    assert (lic.quantity, lic.application, lic.licensee.email) == (
        5,
        number,
        "zhao@example.com",
    )
    assert (lic.valid_until - lic.valid_from).days == 365  # the 1-year validity asked for


def test_the_refusal_path_tells_the_applicant(dev_stack, browser):
    base, console, inbox = (
        printed(dev_stack, "Apply page").split("/apply")[0],
        printed(dev_stack, "Approver"),
        printed(dev_stack, "Inbox"),
    )
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    phone, number = apply_and_follow(context, base, "qian@example.com")
    decide_in_console(context, console, number, "拒绝 Refuse", "COMPLETED · refuse")
    expect(phone.get_by_test_id("status")).to_have_text("未获批准", timeout=15_000)
    mail = context.new_page()
    mail.goto(inbox)
    expect(mail.get_by_text(f"您的软件许可申请未获批准（{number}）")).to_be_visible(timeout=10_000)
    mail.screenshot(path=ARTIFACTS / "refusal-mail.png", full_page=True)
    context.close()


class SlowAnswers:
    """The backend, answering its first submissions only after the frontend stopped waiting.

    Each submission is handled at once; only the answer is late, so its outcome is unknown to
    the page, which must send it again with the same key and be given the first answer.
    """

    def __init__(self, app, late: int, seconds: float = 3.0) -> None:
        self.app, self.late, self.seconds, self.keys = app, late, seconds, []

    def __call__(self, environ, start_response):
        if environ["REQUEST_METHOD"] != "POST":
            return self.app(environ, start_response)
        self.keys.append(environ.get("HTTP_X_DINGPASS_IDEMPOTENCY_KEY"))
        answer = list(self.app(environ, start_response))  # handled and committed
        if len(self.keys) <= self.late:
            time.sleep(self.seconds)
        return answer


@pytest.fixture
def slow_stack(tmp_path):
    """start(late) -> the frontend's URL (BACKEND_TIMEOUT 1 s), its backend, the database URL."""
    if not (STATIC_DIR / "index.html").exists():
        pytest.fail("the page is not built: run `make test`, which builds vue-app first")
    database = f"sqlite:///{tmp_path}/dingpass.db"
    migrate.upgrade(make_engine(database))
    servers = []

    def start(late: int):
        config = Config(database_url=database, proxy_secret=SECRET, catalogue_file=CATALOGUE)
        backend = SlowAnswers(create_app(config), late)
        servers.append(LiveServer(backend))
        front = FrontendConfig(
            backend_url=servers[0].url,
            proxy_secret=SECRET,
            catalogue_file=CATALOGUE,
            backend_timeout=1.0,
        )
        servers.append(LiveServer(create_frontend(front)))
        return servers[1].url, backend, database

    yield start
    for server in servers:
        server.stop()


def stored_numbers(database: str) -> list[str]:
    engine = make_engine(database)
    with engine.connect() as connection:
        numbers = connection.exec_driver_sql("select number from applications").scalars().all()
    engine.dispose()
    return list(numbers)


def test_a_submission_whose_answer_was_lost_is_retried_with_its_key_and_made_once(
    slow_stack, phone
):
    url, backend, database = slow_stack(late=1)
    phone.goto(url + APPLY)
    fill_form(phone, email="sun@example.com")
    phone.get_by_role("button", name="提交申请").click()
    expect(phone.get_by_test_id("retrying")).to_contain_text("正在自动重试")
    phone.shot("1-retrying")
    expect(phone.get_by_test_id("number")).to_have_text(re.compile(r"^A\d{8}-[0-9A-Z]{6}$"))
    phone.shot("2-submitted")
    assert stored_numbers(database) == [phone.get_by_test_id("number").inner_text()]
    assert len(backend.keys) == 2 and backend.keys[0] == backend.keys[1] is not None


def test_after_the_automatic_retries_the_retry_button_sends_the_same_key(slow_stack, phone):
    url, backend, database = slow_stack(late=4)  # the first try and its three retries
    phone.goto(url + APPLY)
    fill_form(phone, email="zhou@example.com")
    phone.get_by_role("button", name="提交申请").click()
    summary = phone.get_by_test_id("summary")
    expect(summary).to_contain_text(
        "我们无法确认您的申请是否已收到；可以放心重试。", timeout=20_000
    )
    phone.shot("1-not-confirmed")
    phone.get_by_role("button", name="重新提交").click()
    expect(phone.get_by_test_id("number")).to_be_visible()
    assert stored_numbers(database) == [phone.get_by_test_id("number").inner_text()]
    assert len(backend.keys) == 5 and len(set(backend.keys)) == 1


def test_a_changed_form_is_sent_under_a_new_key(slow_stack, phone):
    url, backend, database = slow_stack(late=4)
    phone.goto(url + APPLY)
    fill_form(phone, email="wu@example.com")
    phone.get_by_role("button", name="提交申请").click()
    expect(phone.get_by_test_id("retry")).to_be_visible(timeout=20_000)
    phone.get_by_label("邮箱").fill("wu.li@example.com")
    expect(phone.get_by_test_id("retry")).to_be_hidden()  # a retry would be of the old form
    phone.get_by_role("button", name="提交申请").click()
    expect(phone.get_by_test_id("number")).to_be_visible()
    assert len(set(backend.keys[:4])) == 1 and backend.keys[4] != backend.keys[0]
    assert len(stored_numbers(database)) == 2  # the first form was stored, and so is this one


def test_the_retry_button_keeps_the_key_when_a_lower_case_code_was_upper_cased_on_sending(
    slow_stack, phone
):
    url, backend, database = slow_stack(late=4)
    phone.goto(url + "/apply?product=acme-crm")
    fill_form(phone, email="qian@example.com", quantity="5", validity="90d")
    code = phone.get_by_label("机器特征码")
    code.fill("k7q2m9xhzp3r")
    code.press("Enter")  # sent without leaving the field: the code is upper-cased on sending
    phone.get_by_role("button", name="重新提交").click(timeout=20_000)
    expect(phone.get_by_test_id("number")).to_be_visible()
    assert stored_numbers(database) == [phone.get_by_test_id("number").inner_text()]
    assert len(backend.keys) == 5 and len(set(backend.keys)) == 1
