"""Group robots through the mail sandbox's DingTalk and WeCom webhooks, signatures checked."""

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from backend.catalogue import load_catalogue
from backend.fulfillment.names import OPEN_INSTANCE
from backend.jobs import queue
from backend.jobs.model import JobStatus
from backend.robots.clients import RobotClient
from backend.robots.config import Mention, Robot
from backend.robots.context import RobotContext
from backend.robots.events import RobotEvent
from backend.robots.notify import SEND_ROBOT_MESSAGE, notify
from backend.storage.applications import mark_pending
from backend.storage.schema import applications, jobs, robot_messages, robot_slots
from backend.subjects import Subject
from backend.work import runner as build_runner
from backend.work import services
from tests.conftest import CATALOGUE, a_form
from tests.integration.conftest import ROBOT_SECRET, meanwhile


@pytest.fixture
def robots(robot_mail):
    dingtalk = Robot(
        name="approvers",
        kind="dingtalk",
        events=frozenset(RobotEvent),
        webhook=f"{robot_mail.url}/robot/send?access_token=T",
        webhook_env="ROBOT_DT_WEBHOOK",
        secret=ROBOT_SECRET,
        secret_env="ROBOT_DT_SECRET",
        mention=Mention(mobiles=("13800000000",)),
    )
    wecom = Robot(
        name="ops",
        kind="wecom",
        events=frozenset({RobotEvent.AWAITING_APPROVAL}),
        webhook=f"{robot_mail.url}/cgi-bin/webhook/send?key=K",
        webhook_env="ROBOT_WC_WEBHOOK",
        language="en",
    )
    return (dingtalk, wecom)


class FakeOpener:
    """DingTalk opening every approval at once: our own seam, InstanceOpener."""

    def __init__(self, database, clock) -> None:
        self.database, self.clock = database, clock

    def open(self, application_id: int) -> str:
        with self.database.transaction() as connection:
            mark_pending(connection, application_id, f"pi-{application_id}", self.clock())
        return f"pi-{application_id}"


@pytest.fixture
def context(config, database, clock, robots):
    robot_context = RobotContext(robots, RobotClient(clock), config.public_base_url)
    built = services(config, database, load_catalogue(CATALOGUE), None, clock)
    return dataclasses.replace(built, opener=FakeOpener(database, clock), robots=robot_context)


@pytest.fixture
def runner(config, context):
    return build_runner(config, context)


def submitted(api, database, clock) -> int:
    """An application taken in, its approval to be opened now: its id."""
    token = api.post("/applications", a_form()).get_json()["token"]
    with database.transaction() as connection:
        query = select(applications.c.id).where(applications.c.token == token)
        app_id = connection.execute(query).scalar_one()
        queue.due_now(connection, OPEN_INSTANCE, Subject.application(app_id), clock())
    return app_id


def accepted(robot_mail, robot):
    return [m for m in robot_mail.robots.messages() if m["robot"] == robot]


def test_a_new_application_posts_once_to_a_dingtalk_and_a_wecom_robot(
    api, database, clock, runner, robot_mail
):
    app_id = submitted(api, database, clock)
    runner.run_due()
    clock.advance(5)  # past the moment a message waits for others
    runner.run_due()
    (dingtalk,), (wecom,) = accepted(robot_mail, "dt"), accepted(robot_mail, "wc")
    assert dingtalk["answered"]["errcode"] == 0 and wecom["answered"]["errcode"] == 0
    assert dingtalk["title"].startswith("待审批：") and "@13800000000" in dingtalk["text"]
    assert dingtalk["at"]["atMobiles"] == ["13800000000"]
    assert f"pi-{app_id}" in dingtalk["text"] and "/status/" in dingtalk["text"]
    assert "Awaiting approval" in wecom["text"]


def test_ten_events_in_one_second_arrive_merged_with_nothing_lost(
    database, clock, runner, robot_mail, robots
):
    with database.transaction() as connection:
        for n in range(10):
            about = Subject("job", str(n))
            facts = {"job_id": n, "kind": "k", "subject": "-", "attempts": 5, "error": f"e{n}"}
            notify(connection, robots, RobotEvent.JOB_FAILED, about, clock(), facts)
            clock.advance(0.1)
    clock.advance(5)
    runner.run_due()
    (digest,) = accepted(robot_mail, "dt")
    assert digest["title"].startswith("dingpass：10 条通知")
    assert [f"{n}. " in digest["text"] for n in range(1, 11)] == [True] * 10
    with database.transaction() as connection:
        unsent = connection.execute(
            select(robot_messages).where(robot_messages.c.sent_at.is_(None))
        )
        assert unsent.all() == []


def test_a_robot_out_of_budget_waits_and_then_sends_what_waited_as_one(
    database, clock, runner, robot_mail, robots
):
    runner.context = dataclasses.replace(
        runner.context, robots=dataclasses.replace(runner.context.robots, per_minute=1)
    )
    for batch in ([0], [1, 2, 3]):
        with database.transaction() as connection:
            for n in batch:
                facts = {"job_id": n, "kind": "k", "subject": "-", "attempts": 5, "error": "e"}
                notify(
                    connection,
                    robots,
                    RobotEvent.JOB_FAILED,
                    Subject("job", str(n)),
                    clock(),
                    facts,
                )
        clock.advance(5)
        runner.run_due()
    assert len(accepted(robot_mail, "dt")) == 1  # the second minute's budget is not there yet
    clock.advance(60)
    runner.run_due()
    first, second = accepted(robot_mail, "dt")
    assert "dingpass：3 条通知" in second["title"]
    assert all(m["answered"]["errcode"] == 0 for m in (first, second))


def job_failed(database, clock, robots, *numbers: int) -> None:  # type: ignore[no-untyped-def]
    with database.transaction() as connection:
        for n in numbers:
            facts = {"job_id": n, "kind": "k", "subject": "-", "attempts": 5, "error": "e"}
            notify(
                connection, robots, RobotEvent.JOB_FAILED, Subject("job", str(n)), clock(), facts
            )


def test_a_message_another_runner_sent_meanwhile_leaves_the_budget_untouched(
    snapshot_isolation, config, context, clock, robot_mail, robots
):
    runner = build_runner(config, dataclasses.replace(context, database=snapshot_isolation))
    job_failed(snapshot_isolation, clock, robots, 9)  # a send long ago: the budget has its rows
    clock.advance(5)
    runner.run_due()
    clock.advance(120)
    job_failed(snapshot_isolation, clock, robots, 0, 1)
    clock.advance(5)

    def read_its_message(sql: str) -> bool:  # then another runner sends both
        return sql.startswith("SELECT") and "FROM robot_messages" in sql

    with meanwhile(snapshot_isolation.engine, read_its_message, runner.run_due):
        runner.run_due()

    assert len(accepted(robot_mail, "dt")) == 2
    with snapshot_isolation.transaction() as connection:
        recent = robot_slots.c.used_at > clock() - timedelta(minutes=1)
        assert connection.execute(select(func.count()).where(recent)).scalar_one() == 1
        sending = select(jobs.c.status).where(jobs.c.kind == SEND_ROBOT_MESSAGE)
        assert set(connection.execute(sending).scalars()) == {JobStatus.SUCCEEDED}  # no retry


def test_a_robot_refusing_a_wrong_secret_fails_the_job_at_once_with_its_code(
    database, clock, runner, robot_mail, robots
):
    wrong = dataclasses.replace(robots[0], secret="SECwrong")
    runner.context = dataclasses.replace(
        runner.context, robots=dataclasses.replace(runner.context.robots, robots=(wrong,))
    )
    with database.transaction() as connection:
        facts = {"job_id": 1, "kind": "k", "subject": "-", "attempts": 5, "error": "e"}
        notify(connection, (wrong,), RobotEvent.JOB_FAILED, Subject("job", "1"), clock(), facts)
    clock.advance(5)
    runner.run_due()  # once: trying again cannot help until the secret is fixed
    with database.transaction() as connection:
        (job,) = queue.listing(connection)
    assert (job.kind, job.status, job.attempts) == (SEND_ROBOT_MESSAGE, JobStatus.FAILED, 1)
    assert "errcode 310000 (sign not match)" in job.last_error
    assert "ROBOT_DT_SECRET does not match the robot's 加签 secret" in job.last_error


def test_an_event_recorded_twice_tells_a_robot_once(database, clock, robots):
    about = Subject.application(1)
    with database.transaction() as connection:
        first = notify(connection, robots, RobotEvent.REFUSAL, about, clock())
        again = notify(connection, robots, RobotEvent.REFUSAL, about, clock())
    assert (len(first), again) == (1, [])  # only the DingTalk robot is told of refusals


def failed_job(n: int, error: str = "e") -> dict[str, object]:
    return {"job_id": n, "kind": "k", "subject": "-", "attempts": 5, "error": error}


def test_a_burst_too_big_for_one_message_arrives_whole_in_several_within_wecoms_limit(
    database, clock, runner, robot_mail, robots
):
    wecom = robots[1]
    companies = [f"{n:02d} " + "杭州某某信息技术有限公司" * 15 for n in range(26)]
    with database.transaction() as connection:
        for n, company in enumerate(companies):
            facts = {"company": company, "product_name": "ERP", "quantity": 1, "number": f"A{n}"}
            notify(
                connection,
                (wecom,),
                RobotEvent.AWAITING_APPROVAL,
                Subject("job", str(n)),
                clock(),
                facts,
            )
    for _ in range(3):
        clock.advance(5)
        runner.run_due()
    sent = accepted(robot_mail, "wc")
    assert len(sent) > 1 and all(m["answered"]["errcode"] == 0 for m in sent)
    assert max(len(m["text"].encode()) for m in sent) <= 4096
    shown = "".join(m["text"] for m in sent)
    assert [company[:60] in shown for company in companies] == [True] * 26
    with database.transaction() as connection:
        assert connection.execute(select(robot_messages.c.sent_at)).scalars().all().count(None) == 0


def test_a_busy_robot_is_sent_again_later_and_the_job_succeeds(
    database, clock, runner, robot_mail, robots
):
    robot_mail.robots.refuse("T", -1, "系统繁忙")
    with database.transaction() as connection:
        notify(
            connection, robots, RobotEvent.JOB_FAILED, Subject("job", "1"), clock(), failed_job(1)
        )
    clock.advance(5)
    runner.run_due()
    assert [m["answered"]["errcode"] for m in accepted(robot_mail, "dt")] == [-1]
    clock.advance(600)
    runner.run_due()
    with database.transaction() as connection:
        (job,) = queue.listing(connection)
    (message,) = [m for m in accepted(robot_mail, "dt") if m["answered"]["errcode"] == 0]
    assert (job.status, job.attempts) == (JobStatus.SUCCEEDED, 2)
    assert "任务失败" in message["title"]


class RecordingClient(RobotClient):
    """The real client, keeping each send's msgUuid."""

    uuids: list[str | None]

    def send(self, robot, message, uuid=None):
        self.uuids.append(uuid)
        return super().send(robot, message, uuid)


def test_a_batch_keeps_its_msg_uuid_when_sent_again(database, clock, runner, robot_mail, robots):
    client = RecordingClient(clock)
    client.uuids = []
    runner.context = dataclasses.replace(
        runner.context, robots=dataclasses.replace(runner.context.robots, client=client)
    )
    robot_mail.robots.refuse("T", -1, "系统繁忙")
    with database.transaction() as connection:
        notify(
            connection, robots, RobotEvent.JOB_FAILED, Subject("job", "1"), clock(), failed_job(1)
        )
    for _ in range(2):
        clock.advance(600)
        runner.run_due()
    first, again = client.uuids
    assert first == again and first is not None and first.startswith("dingpass-")


def test_robots_test_sends_at_once_and_exit_1_names_the_fix(
    run_cli, robot_mail, tmp_path, database, database_url
):
    path = tmp_path / "robots.toml"
    path.write_text(
        '[robots.dt]\nkind = "dingtalk"\nevents = ["refusal"]\n'
        'webhook_env = "ROBOT_DT_WEBHOOK"\nsecret_env = "ROBOT_DT_SECRET"\n'
    )
    env = {
        "ROBOTS_FILE": str(path),
        "ROBOT_DT_WEBHOOK": f"{robot_mail.url}/robot/send?access_token=T",
        "DATABASE_URL": database_url,
    }
    robot_mail.robots.clock = __import__("time").time  # the command signs with the real clock
    good = run_cli("robots", "test", "dt", env={**env, "ROBOT_DT_SECRET": ROBOT_SECRET})
    bad = run_cli("robots", "test", "dt", env={**env, "ROBOT_DT_SECRET": "SECwrong"})
    unknown = run_cli("robots", "test", "nobody", env={**env, "ROBOT_DT_SECRET": ROBOT_SECRET})
    assert good.exit_code == 0 and "answered errcode 0" in good.output
    assert bad.exit_code == 1 and "errcode 310000" in bad.output
    assert "ROBOT_DT_SECRET does not match" in bad.output
    assert unknown.exit_code == 1 and "no robot is called 'nobody'" in unknown.output


def test_robots_test_takes_a_place_in_the_budget_and_refuses_when_it_is_spent(
    run_cli, robot_mail, tmp_path, database, database_url
):
    path = tmp_path / "robots.toml"
    path.write_text('[robots.wc]\nkind = "wecom"\nevents = ["refusal"]\nwebhook_env = "WC"\n')
    env = {
        "ROBOTS_FILE": str(path),
        "WC": f"{robot_mail.url}/cgi-bin/webhook/send?key=K",
        "DATABASE_URL": database_url,
    }
    answers = [run_cli("robots", "test", "wc", env=env) for _ in range(21)]
    assert [a.exit_code for a in answers] == [0] * 20 + [1]
    assert "robot wc has taken its 20 messages of the last minute; try again in" in (
        answers[20].output
    )
    assert len(accepted(robot_mail, "wc")) == 20
