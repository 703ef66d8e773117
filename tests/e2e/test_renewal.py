"""From the expiry reminder mail's link to a submitted renewal, in a real browser at phone size."""

import re
from datetime import datetime, timedelta, timezone

import pytest
import requests
from playwright.sync_api import expect
from sqlalchemy import select

from backend.catalogue import load_catalogue
from backend.checks.run import CheckSettings, run_checks
from backend.config import Config
from backend.storage.database import Database
from backend.storage.schema import applications, jobs, licenses
from backend.work import runner as build_runner
from backend.work import services
from sandbox.mail import MailSandbox
from tests.conftest import CATALOGUE, a_form
from tests.e2e.conftest import Stack


@pytest.fixture
def mailbox():
    sandbox = MailSandbox().start()
    yield sandbox
    sandbox.stop()


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def licensed(stack: Stack, days: int) -> str:
    """An application taken in through the page's API, and a license for it ending in ``days``:
    its application number."""
    answer = requests.post(
        f"{stack.url}/api/applications",
        json=a_form(email="renew@example.com", quantity=10, validity="1y"),
        headers={"Idempotency-Key": "e2e-renewal-0001"},
        timeout=10,
    )
    answer.raise_for_status()
    database = Database(stack.database)
    with database.transaction() as connection:
        found = connection.execute(select(applications.c.id, applications.c.number)).one()
        connection.execute(jobs.delete())  # DingTalk is not in this test
        connection.execute(
            licenses.insert().values(
                id="LIC-RENEW-1",
                application_id=found.id,
                key_id="test",
                text="(the signed file)",
                issued_at=utc_now() - timedelta(days=365),  # a year's license, near its end
                valid_until=utc_now() + timedelta(days=days),
            )
        )
    database.dispose()
    return str(found.number)


def reminder_link(stack: Stack, mailbox: MailSandbox) -> str:
    """Run the checks and the runner as the timer does; the link in the mail that arrived."""
    config = Config(
        database_url=stack.database,
        catalogue_file=CATALOGUE,
        public_base_url=stack.url,
        smtp_port=mailbox.smtp_port,
    )
    database = Database(stack.database)
    context = services(config, database, load_catalogue(CATALOGUE), None, utc_now)
    run_checks(context, CheckSettings(digest_hour=23), utc_now())
    build_runner(config, context).run_due()
    database.dispose()
    (message,) = mailbox.mailbox.messages.values()
    text = message.get_body(("plain",)).get_content()
    (link,) = re.findall(r"^(http\S+/apply\?\S+)$", text, re.MULTILINE)
    return link


def test_the_reminder_mails_link_opens_a_filled_form_that_submits_a_renewal(
    live_stack, mailbox, phone
):
    first = licensed(live_stack, days=7)
    link = reminder_link(live_stack, mailbox)
    phone.goto(link)
    expect(phone.get_by_label("机器特征码")).to_have_value("9F2C-41AB-77D0-E5C3")
    expect(phone.get_by_label("公司名称")).to_have_value("杭州示例网络科技有限公司")
    expect(phone.get_by_label("联系人")).to_have_value("张三")
    expect(phone.get_by_label("邮箱")).to_have_value("renew@example.com")
    expect(phone.get_by_label("数量")).to_have_value("10")
    expect(phone.get_by_label("有效期")).to_have_value("1y")
    expect(phone.get_by_label("备注")).to_have_value(re.compile("LIC-RENEW-1"))
    phone.shot("1-renewal-prefilled")

    phone.get_by_role("button", name="提交申请").click()
    number = phone.get_by_test_id("number")
    expect(number).to_have_text(re.compile(r"^A\d{8}-[0-9A-Z]{6}$"))
    assert number.inner_text() != first
    phone.shot("2-renewal-submitted")
