"""The runner's scheduled checks: each reminder and digest recorded once, whatever the timer."""

import dataclasses
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from backend.catalogue import load_catalogue
from backend.checks.expiring import SEND_EXPIRY_REMINDER
from backend.checks.run import CheckSettings, run_checks
from backend.jobs import queue
from backend.jobs.model import JobStatus
from backend.robots.clients import RobotClient
from backend.robots.config import Mention, Robot
from backend.robots.context import RobotContext
from backend.robots.events import RobotEvent
from backend.robots.notify import SEND_ROBOT_MESSAGE, notify
from backend.storage.schema import applications, jobs, licenses, robot_messages
from backend.subjects import Subject
from backend.work import runner as build_runner
from backend.work import services
from tests.conftest import CATALOGUE, a_form
from tests.integration.conftest import ROBOT_SECRET

SETTINGS = CheckSettings(pending_every=timedelta(hours=24), digest_hour=23)
"""The clock stays before 23:00 where these are used: no daily digest in their way."""
DIGEST = dataclasses.replace(SETTINGS, digest_hour=1)


@pytest.fixture
def robots(robot_mail):
    """The vendor's DingTalk robot (expiring licenses, pending approvals) and an ops robot on
    WeCom (the daily digest)."""
    vendor = Robot(
        name="vendor",
        kind="dingtalk",
        events=frozenset({RobotEvent.LICENSE_EXPIRING, RobotEvent.APPROVAL_PENDING}),
        webhook=f"{robot_mail.url}/robot/send?access_token=T",
        webhook_env="ROBOT_DT_WEBHOOK",
        secret=ROBOT_SECRET,
        secret_env="ROBOT_DT_SECRET",
        mention=Mention(mobiles=("13800000000",)),
    )
    ops = Robot(
        name="ops",
        kind="wecom",
        events=frozenset({RobotEvent.DAILY_DIGEST}),
        webhook=f"{robot_mail.url}/cgi-bin/webhook/send?key=K",
        webhook_env="ROBOT_WC_WEBHOOK",
        language="en",
    )
    return (vendor, ops)


@pytest.fixture
def context(config, database, clock, robots, robot_mail):
    settings = dataclasses.replace(config, smtp_port=robot_mail.smtp_port)
    built = services(settings, database, load_catalogue(CATALOGUE), None, clock)
    robot_context = RobotContext(robots, RobotClient(clock), config.public_base_url)
    return dataclasses.replace(built, robots=robot_context)


@pytest.fixture
def runner(config, context):
    return build_runner(config, context)


def licensed(api, database, clock, days: float, issued_days_ago: float = 365) -> str:
    """A license issued ``issued_days_ago`` (a year, unless said), ending ``days`` from now."""
    token = api.post("/applications", a_form()).get_json()["token"]
    with database.transaction() as connection:
        app_id = connection.execute(
            select(applications.c.id).where(applications.c.token == token)
        ).scalar_one()
        connection.execute(jobs.delete())  # DingTalk is not in this test
        connection.execute(
            licenses.insert().values(
                id="LIC-0001",
                application_id=app_id,
                key_id="test",
                text="(the signed file)",
                issued_at=clock() - timedelta(days=issued_days_ago),
                valid_until=clock() + timedelta(days=days),
            )
        )
    return "LIC-0001"


def reminder_jobs(database) -> list[str]:
    with database.transaction() as connection:
        query = select(jobs.c.dedupe_key).where(jobs.c.kind == SEND_EXPIRY_REMINDER)
        return sorted(connection.execute(query).scalars())


def test_a_license_gets_one_reminder_at_30_7_and_1_days_however_often_the_timer_runs(
    api, database, clock, context, runner, robot_mail
):
    licensed(api, database, clock, days=31)
    ends = clock() + timedelta(days=31)
    assert run_checks(context, SETTINGS, clock()) == []  # 31 days: nothing yet
    for days, sent in ((30, 1), (7, 2), (1, 3)):
        clock.now = ends - timedelta(days=days, minutes=1)  # a minute more than ``days`` left
        assert run_checks(context, SETTINGS, clock()) == []  # not quite: still nothing
        clock.advance(120)
        for _ in range(3):  # the timer, three times a pass, the runner each time
            run_checks(context, SETTINGS, clock())
            runner.run_due()
        assert len(reminder_jobs(database)) == sent
        assert len(robot_mail.mailbox.messages) == sent
    subjects = sorted(str(m["Subject"]) for m in robot_mail.mailbox.messages.values())
    assert (
        subjects
        == [f"您的软件许可将于 {ends.date().isoformat()} 到期：Acme ERP 企业版（LIC-0001）"] * 3
    )


def test_the_reminder_mail_says_the_end_date_and_links_to_a_filled_renewal(
    api, database, clock, context, runner, robot_mail
):
    licensed(api, database, clock, days=6.5)
    (line,) = run_checks(context, SETTINGS, clock())
    assert "LIC-0001" in line and "7 day(s)" in line and "zhang@example.com" in line
    runner.run_due()
    (message,) = robot_mail.mailbox.messages.values()
    text = message.get_body(("plain",)).get_content()
    expires = (clock() + timedelta(days=6.5)).date().isoformat()
    assert f"到期日：{expires}" in text
    assert "https://apply.example.com/apply?product=acme-erp&version=8.2" in text
    assert "renew=LIC-0001" in text and "email=zhang%40example.com" in text


def test_a_license_issued_for_less_than_a_threshold_is_not_reminded_of_it(
    api, database, clock, context
):
    licensed(api, database, clock, days=30, issued_days_ago=0)  # "30 days left" as it comes?
    clock.advance(60)
    assert run_checks(context, SETTINGS, clock()) == []
    clock.advance(23 * 24 * 3600)  # 7 days left: that reminder is due
    (line,) = run_checks(context, SETTINGS, clock())
    assert "7 day(s)" in line


def renew(api, database, clock) -> None:
    """A second license, for a year, for the same product and machine as licensed()'s."""
    token = api.post("/applications", a_form(email="renewed@example.com")).get_json()["token"]
    with database.transaction() as connection:
        app_id = connection.execute(
            select(applications.c.id).where(applications.c.token == token)
        ).scalar_one()
        connection.execute(jobs.delete().where(jobs.c.kind == "open_instance"))  # no DingTalk
        until = clock() + timedelta(days=365)
        renewal = {"id": "LIC-0002", "application_id": app_id, "key_id": "test", "text": "-"}
        connection.execute(
            licenses.insert().values({**renewal, "issued_at": clock(), "valid_until": until})
        )


def test_a_license_renewed_already_gets_no_reminder(api, database, clock, context):
    licensed(api, database, clock, days=6.5)
    renew(api, database, clock)
    assert run_checks(context, SETTINGS, clock()) == []
    assert reminder_jobs(database) == []


def test_a_reminder_recorded_before_a_renewal_is_not_mailed_after_it(
    api, database, clock, context, runner, robot_mail
):
    licensed(api, database, clock, days=6.5)
    assert len(run_checks(context, SETTINGS, clock())) == 1
    renew(api, database, clock)
    runner.run_due()
    assert robot_mail.mailbox.messages == {} and reminder_jobs(database) != []


def test_the_vendors_robot_hears_of_expiring_licenses(
    api, database, clock, context, runner, robot_mail
):
    licensed(api, database, clock, days=0.5)
    run_checks(context, SETTINGS, clock())
    clock.advance(5)  # past the moment a robot message waits for others
    runner.run_due()
    (told,) = [m for m in robot_mail.robots.messages() if m["robot"] == "dt"]
    assert told["answered"]["errcode"] == 0 and told["title"].startswith("许可将于 1 天内到期")
    assert "renew=LIC-0001" in told["text"]


def test_a_dry_run_shows_what_is_due_and_records_nothing(api, database, clock, context, robot_mail):
    licensed(api, database, clock, days=29)
    (line,) = run_checks(context, SETTINGS, clock(), dry_run=True)
    assert "LIC-0001" in line and "30 day(s)" in line
    assert reminder_jobs(database) == []
    with database.transaction() as connection:
        assert connection.execute(select(robot_messages)).all() == []
    assert len(run_checks(context, SETTINGS, clock())) == 1  # and a real run records it


def test_a_pending_approval_reminds_the_approvers_once_per_interval(
    pending, database, clock, context
):
    def reminders() -> list[str]:
        with database.transaction() as connection:
            query = select(robot_messages.c.about_id).where(
                robot_messages.c.event == RobotEvent.APPROVAL_PENDING
            )
            return sorted(connection.execute(query).scalars())

    clock.advance(23 * 3600)
    assert run_checks(context, SETTINGS, clock()) == [] and reminders() == []
    for hours, told in ((1, 1), (1, 1), (10, 1), (13, 2), (1, 2)):
        clock.advance(hours * 3600)
        run_checks(context, SETTINGS, clock())
        assert len(reminders()) == told
    assert [about.split(".")[1] for about in reminders()] == ["1", "2"]


def test_the_daily_digest_reports_a_robot_job_failed_with_the_robots_code(
    database, clock, context, runner, robot_mail, robots
):
    wrong = dataclasses.replace(robots[0], secret="SECwrong", events=frozenset(RobotEvent))
    runner.context = dataclasses.replace(
        context, robots=dataclasses.replace(context.robots, robots=(wrong, robots[1]))
    )
    with database.transaction() as connection:
        facts = {"job_id": 1, "kind": "k", "subject": "-", "attempts": 5, "error": "e"}
        about = Subject("job", "1")
        notify(connection, (wrong,), RobotEvent.JOB_FAILED, about, clock(), facts)
    clock.advance(5)
    runner.run_due()
    with database.transaction() as connection:
        (failed,) = queue.listing(connection, JobStatus.FAILED)
    assert failed.kind == SEND_ROBOT_MESSAGE and "310000" in (failed.last_error or "")
    (line,) = run_checks(context, DIGEST, clock())
    assert "1 failed" in line
    assert run_checks(context, DIGEST, clock()) == []  # once a day
    clock.advance(5)
    runner.run_due()
    (digest,) = [m for m in robot_mail.robots.messages() if m["robot"] == "wc"]
    assert digest["answered"]["errcode"] == 0
    assert f"{failed.id} send_robot_message" in digest["text"]
    assert "errcode 310000 (sign not match)" in digest["text"]


def test_the_daily_digest_waits_for_its_hour(database, clock, context):
    with database.transaction() as connection:
        job = queue.enqueue(connection, "k", None, clock(), part="1")
        connection.execute(jobs.update().where(jobs.c.id == job).values(status=JobStatus.FAILED))
    later = dataclasses.replace(DIGEST, digest_hour=clock().hour + 1)
    assert run_checks(context, later, clock()) == []
    clock.advance(3600)
    assert len(run_checks(context, later, clock())) == 1


def test_the_daily_digest_counts_every_failed_job_and_lists_the_newest(
    database, clock, context, runner, robot_mail
):
    with database.transaction() as connection:
        for number in range(25):
            job = queue.enqueue(connection, "k", None, clock(), part=str(number))
            failed = {"status": JobStatus.FAILED, "last_error": f"error {number}"}
            connection.execute(jobs.update().where(jobs.c.id == job).values(failed))
    (line,) = run_checks(context, DIGEST, clock())
    assert "25 failed" in line
    clock.advance(5)
    runner.run_due()
    (digest,) = [m for m in robot_mail.robots.messages() if m["robot"] == "wc"]
    listed = re.findall(r"error (\d+)$", digest["text"], re.M)
    assert sorted(map(int, listed)) == list(range(5, 25))  # the newest 20
    assert "and 5 more" in digest["text"]


def test_the_runner_functions_timer_runs_the_checks_and_sends_in_the_same_pass(
    api, config, database, clock, robot_mail
):
    from runner.app import create_app as create_runner

    licensed(api, database, clock, days=29)
    settings = dataclasses.replace(config, smtp_port=robot_mail.smtp_port, digest_hour=23)
    app = create_runner(settings, clock=clock)
    try:
        kicked = app.test_client().post("/invoke", json={"source": "dingpass.kick"}).get_json()
        assert kicked["ran"] == 0 and reminder_jobs(database) == []  # a kick runs jobs only
        for _ in range(2):
            app.test_client().post("/invoke", json={"triggerName": "every-minute"})
    finally:
        app.extensions["database"].dispose()
    assert len(reminder_jobs(database)) == 1 and len(robot_mail.mailbox.messages) == 1


def test_checks_run_dry_run_prints_what_would_be_sent(api, database_url, database, clock, run_cli):
    clock.now = datetime.now(timezone.utc)  # the command reads the real clock
    licensed(api, database, clock, days=29)
    env = {"DATABASE_URL": database_url, "DIGEST_HOUR": "23"}
    shown = run_cli("checks", "run", "--dry-run", env=env)
    assert shown.exit_code == 0, shown.output
    assert "license LIC-0001" in shown.output and "Dry run: 1 would be recorded" in shown.output
    assert reminder_jobs(database) == []
