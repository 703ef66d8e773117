"""From a decision to a delivered mail: the license once, the mail once, whatever fails."""

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest
import requests
from sqlalchemy import select

from backend.approvals.dispatcher import Dispatcher
from backend.approvals.events import ApprovalEvent
from backend.fulfillment.mails import send_once
from backend.jobs import queue
from backend.jobs.model import Job, JobStatus
from backend.mail.compose import compose
from backend.storage.applications import mark_pending
from backend.storage.mails import MailKind, mail_record, mark_handed_over
from backend.storage.schema import applications, jobs, licenses, mails
from backend.subjects import Subject
from backend.work import runner as build_runner
from backend.work import services
from license import key_ring, verify
from sandbox.mail import MailSandbox
from tests.conftest import CATALOGUE, VECTORS
from tests.integration.conftest import SignedClient, a_form


@pytest.fixture
def mailbox():
    sandbox = MailSandbox().start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def settings(config, mailbox):
    return dataclasses.replace(
        config,
        smtp_port=mailbox.smtp_port,
        license_signing_key=str(VECTORS / "test-signing-key.pem"),
    )


@pytest.fixture
def runner(settings, database, clock):
    from backend.catalogue import load_catalogue

    return build_runner(
        settings, services(settings, database, load_catalogue(CATALOGUE), None, clock)
    )


def decided(
    api: SignedClient, database, clock, result: str | None = "agree", **form
) -> tuple[str, int]:
    """An application approved, refused (or, with result None, withdrawn) in DingTalk: its token
    and id."""
    token = api.post("/applications", a_form(**form)).get_json()["token"]
    with database.transaction() as connection:
        app_id = connection.execute(
            select(applications.c.id).where(applications.c.token == token)
        ).scalar()
        mark_pending(connection, app_id, f"pi-{app_id}", clock())
        connection.execute(
            jobs.delete().where(jobs.c.kind == "open_instance")
        )  # DingTalk is not in this test
    kind = "finish" if result else "terminate"
    Dispatcher(database, clock).dispatch(ApprovalEvent(f"pi-{app_id}", kind, result, "http"))
    return token, app_id


def count(database, table) -> int:
    with database.transaction() as connection:
        return len(connection.execute(select(table)).all())


def test_an_approval_ends_delivered_with_the_signed_license_attached(
    api, database, clock, runner, mailbox
):
    token, app_id = decided(api, database, clock)
    assert runner.run_due() == 2  # issue_license, then send_license_mail
    status = api.get(f"/applications/{token}").get_json()
    assert [e["status"] for e in status["timeline"]][-3:] == [
        "approved",
        "issued",
        "delivered",
    ]
    (message,) = mailbox.mailbox.messages.values()
    (attachment,) = message.iter_attachments()
    lic = verify(
        attachment.get_content(),
        key_ring([(VECTORS / "test-public-key.pem").read_bytes()]),
        feature_code="9F2C-41AB-77D0-E5C3",
        product="acme-erp",
    )
    assert attachment.get_filename() == f"acme-erp-{lic.id}.lic"
    assert message["Message-ID"] == f"<license.{lic.id}@dingpass.localhost>"
    assert (
        lic.quantity == 5
        and lic.entitlements == ("reports", "api", "sso")
        and lic.edition == "enterprise"
    )
    assert (
        message.get_body(("html",)) is not None
        and "9F2C-41AB-77D0-E5C3" in message.get_body(("plain",)).get_content()
    )


def test_the_license_downloaded_from_the_inbox_is_the_stored_text_byte_for_byte(
    api, database, clock, runner, mailbox
):
    decided(api, database, clock, company="杭州示例网络科技有限公司")
    runner.run_due()
    with database.transaction() as connection:
        stored = connection.execute(select(licenses.c.text)).scalar_one()
    (summary,) = mailbox.mailbox.summary()
    download = requests.get(f"{mailbox.url}/messages/{summary['id']}/attachments/0", timeout=5)
    assert download.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert download.content == stored.encode("utf-8") and "杭州示例网络科技有限公司" in stored
    ring = key_ring([(VECTORS / "test-public-key.pem").read_bytes()])
    assert verify(download.content.decode("utf-8"), ring).licensee.company == (
        "杭州示例网络科技有限公司"
    )


def test_the_license_job_run_twice_keeps_one_license(api, database, clock, runner):
    _, app_id = decided(api, database, clock)
    runner.run_due()
    with database.transaction() as connection:
        job = connection.execute(select(jobs).where(jobs.c.kind == "issue_license")).one()
        connection.execute(jobs.update().where(jobs.c.id == job.id).values(status="failed"))
        queue.requeue(connection, job.id, clock())
    runner.run_due()
    assert count(database, licenses) == 1


def test_a_mail_job_run_again_after_the_server_accepted_never_mails_twice(
    api, database, clock, runner, mailbox
):
    decided(api, database, clock)
    runner.run_due()
    kind = runner.kinds.get("send_license_mail")
    with database.transaction() as connection:
        query = select(jobs).where(jobs.c.kind == "send_license_mail")
        job = Job.from_row(connection.execute(query).mappings().one())
    kind.handler(runner.context, job)  # as if the lease had run out after the server accepted
    assert len(mailbox.mailbox.messages) == 1


def test_a_mail_another_run_handed_over_meanwhile_is_not_sent(database, runner, mailbox, clock):
    about = Subject.application(1)
    with database.transaction() as connection:  # this run reads the record: not handed over
        mail = mail_record(connection, about, MailKind.REFUSAL, "<refusal.1@x>", "z@example.com")
    with database.transaction() as connection:  # the run whose lease ran out, thawed, hands it over
        assert mark_handed_over(connection, mail, clock())
    facts = {
        "contact": "张三",
        "company": "示例",
        "number": "A1",
        "product_name": "P",
        "status": "refused",
    }
    message = compose(
        "refusal",
        "zh",
        facts,
        sender="l@example.com",
        recipient="z@example.com",
        message_id="<r@x>",
    )
    send_once(runner.context, mail, message)
    assert not mailbox.mailbox.messages  # the server never got the end of this run's copy


def test_smtp_down_then_back_delivers_every_mail_once(api, database, clock, runner, mailbox):
    tokens = [decided(api, database, clock, email=f"user{n}@example.com")[0] for n in range(5)]
    mailbox.smtp_down()
    runner.run_due()
    assert len(mailbox.mailbox.messages) == 0 and count(database, licenses) == 5
    mailbox.smtp_up()
    clock.advance(60)
    runner.run_due()
    recipients = sorted(m["To"] for m in mailbox.mailbox.messages.values())
    assert recipients == [f"user{n}@example.com" for n in range(5)]
    assert all(api.get(f"/applications/{t}").get_json()["status"] == "delivered" for t in tokens)
    with database.transaction() as connection:
        assert all(row.sent_at for row in connection.execute(select(mails)).all())


def test_an_english_applicant_gets_an_english_mail(api, database, clock, runner, mailbox):
    decided(api, database, clock, language="en")
    runner.run_due()
    (message,) = mailbox.mailbox.messages.values()
    assert message["Subject"].startswith("Your license: Acme ERP Enterprise")
    assert "has been approved" in message.get_body(("plain",)).get_content()


def test_a_refusal_is_mailed_and_issues_nothing(api, database, clock, runner, mailbox):
    token, _ = decided(api, database, clock, result="refuse")
    runner.run_due()
    (message,) = mailbox.mailbox.messages.values()
    number = api.get(f"/applications/{token}").get_json()["number"]
    assert message["Subject"] == f"您的软件许可申请未获批准（{number}）"
    assert not list(message.iter_attachments())
    assert "未获批准" in message.get_body(("plain",)).get_content()
    assert (
        count(database, licenses) == 0
        and api.get(f"/applications/{token}").get_json()["status"] == "refused"
    )


@pytest.mark.parametrize(
    ("result", "subject"),
    [
        ("refuse", "Your license application was not approved ({})"),
        (None, "Your license application was withdrawn ({})"),
    ],
    ids=["refused", "terminated"],
)
def test_the_english_subject_says_what_became_of_the_application(
    api, database, clock, runner, mailbox, result, subject
):
    token, _ = decided(api, database, clock, result=result, language="en")
    runner.run_due()
    (message,) = mailbox.mailbox.messages.values()
    number = api.get(f"/applications/{token}").get_json()["number"]
    assert message["Subject"] == subject.format(number)


def test_a_mail_job_outlasts_an_smtp_outage_of_hours(api, database, clock, runner, mailbox):
    token, _ = decided(api, database, clock)
    mailbox.smtp_down()
    for _ in range(36):  # three hours, the runner's timer coming by every five minutes
        runner.run_due()
        clock.advance(300)
    with database.transaction() as connection:
        [mail_job] = queue.listing(connection, JobStatus.QUEUED)
    assert mail_job.kind == "send_license_mail" and mail_job.attempts >= 30
    mailbox.smtp_up()
    runner.run_due()
    assert len(mailbox.mailbox.messages) == 1
    assert api.get(f"/applications/{token}").get_json()["status"] == "delivered"


def test_a_failed_job_is_listed_and_retried_from_the_command_line(
    api, database, clock, runner, mailbox, run_cli, settings
):
    _, app_id = decided(api, database, clock)
    mailbox.smtp_down()
    runner.run_due()
    clock.advance(25 * 3600)  # past the day a mail job keeps trying
    runner.run_due()
    env = {"DATABASE_URL": settings.database}
    listed = run_cli("jobs", "list", "--failed", env=env)
    assert (
        f"send_license_mail  application {app_id}" in listed.output
        and "failed    attempt 2 of those in 24 h" in listed.output
        and "Connection" in listed.output
        and "dingpass jobs retry --failed" in listed.output
    )
    job_id = listed.output.split()[0]
    mailbox.smtp_up()
    assert run_cli("jobs", "retry", job_id, env=env).exit_code == 0
    clock.now = datetime.now(timezone.utc) + timedelta(seconds=1)  # the command stamps real time
    runner.run_due()
    assert len(mailbox.mailbox.messages) == 1
    assert run_cli("jobs", "retry", job_id, env=env).exit_code == 1  # not failed any more
