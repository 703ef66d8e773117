"""Schema upgrades work on databases that already hold data, on SQLite and MariaDB."""

import json
import os
import secrets
import subprocess
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, insert, select, text

from backend.exceptions import DowngradeRefused
from backend.jobs import queue
from backend.storage import migrate
from backend.storage.applications import by_id
from backend.storage.database import Database, make_engine
from backend.storage.schema import application_events, applications, metadata
from backend.subjects import Subject, SubjectType
from tests.conftest import CATALOGUE
from tests.integration.conftest import MARIADB
from tests.integration.test_cli_errors import SCRIPT

NOW = datetime(2026, 11, 23, 8, tzinfo=timezone.utc)
ROW = {
    "number": "A20261123-AAAAAA",
    "token": "t" * 32,
    "status": "submitted",
    "product": "acme-erp",
    "product_version": "",
    "feature_code": "9F2C",
    "company": "杭州示例",
    "contact": "张三",
    "email": "z@example.com",
    "phone": "",
    "quantity": 5,
    "validity": "1y",
    "note": "",
    "language": "zh",
    "client_ip": "203.0.113.7",
    "created_at": NOW,
    "updated_at": NOW,
}
STATUSES = ("submitted", "pending", "approved", "refused", "terminated", "issued", "delivered")
# The jobs and mails tables as revision 0003 had them, to fill a database at that revision.
JOBS_0003 = sa.table(
    "jobs",
    *(
        sa.column(name)
        for name in (
            "id kind application_id status attempts run_after last_error created_at updated_at "
            "payload depends_on condition max_attempts leased_by lease_until version finished_at"
        ).split()
    ),
)
MAILS_0003 = sa.table(
    "mails", *map(sa.column, "id application_id kind message_id recipient sent_at".split())
)
LICENSES = sa.table("licenses", *map(sa.column, "id application_id key_id text issued_at".split()))
LATER = NOW + timedelta(minutes=3)


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def empty_database(request, tmp_path):
    if request.param == "sqlite":
        yield make_engine(f"sqlite:///{tmp_path}/old.db")
        return
    name = f"dingpass_migrate_{secrets.token_hex(4)}"
    admin = create_engine(f"{MARIADB}/test")
    with admin.begin() as connection:
        connection.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
    engine = make_engine(f"{MARIADB}/{name}")
    yield engine
    engine.dispose()
    with admin.begin() as connection:
        connection.execute(text(f"DROP DATABASE {name}"))
    admin.dispose()


@pytest.fixture
def filled_at_0003(empty_database):
    """A database at revision 0003 with applications, jobs, licenses and mails in every state."""
    migrate.upgrade(empty_database, "0003")
    with empty_database.begin() as connection:
        for n, status in enumerate(STATUSES, start=1):
            connection.execute(insert(applications).values(_application(n, status)))
        connection.execute(insert(JOBS_0003), OLD_JOBS)
        connection.execute(insert(LICENSES), OLD_LICENSES)
        connection.execute(insert(MAILS_0003), OLD_MAILS)
        for table, filled in OTHER_ROWS.items():
            connection.execute(insert(sa.table(table, *map(sa.column, filled[0]))), filled)
    return empty_database


def _application(n: int, status: str) -> dict[str, object]:
    pending = status not in ("submitted",)
    return {
        **ROW,
        "number": f"A20261123-{n:06d}",
        "token": f"{n:032d}",
        "status": status,
        "instance_id": f"pi-{n}" if pending else None,
    }


def _job(job_id, kind, app, status, **values):
    return {
        "id": job_id,
        "kind": kind,
        "application_id": app,
        "status": status,
        "attempts": 1,
        "run_after": NOW,
        "last_error": None,
        "created_at": NOW,
        "updated_at": NOW,
        "payload": "{}",
        "depends_on": None,
        "condition": None,
        "max_attempts": 5,
        "leased_by": None,
        "lease_until": None,
        "version": 2,
        "finished_at": None,
        **values,
    }


OLD_JOBS = [
    _job(1, "open_instance", 1, "queued", attempts=2, last_error="DingTalkUnavailable: timeout"),
    _job(2, "open_instance", 2, "succeeded", finished_at=NOW),
    _job(3, "issue_license", 3, "running", leased_by="fc-1:7:140", lease_until=LATER),
    _job(4, "send_refusal_mail", 4, "failed", attempts=5, last_error="SMTPConnectError: down"),
    _job(5, "send_refusal_mail", 5, "waiting", condition=json.dumps({"check": "smtp"})),
    _job(6, "issue_license", 6, "succeeded", finished_at=NOW),
    _job(9, "send_license_mail", 5, "queued", depends_on=404),  # its prerequisite is gone
    _job(7, "send_license_mail", 6, "queued", depends_on=6, payload=json.dumps({"n": 1})),
    _job(8, "send_license_mail", 7, "succeeded", finished_at=NOW),
]
OLD_LICENSES = [
    {"id": f"L-{n}", "application_id": n, "key_id": "3167edf0", "text": "…", "issued_at": NOW}
    for n in (6, 7)
]


def _mail(mail_id, app, kind, sent_at=None):
    key = f"L-{app}" if kind == "license" else str(app)
    message_id, recipient = f"<{kind}.{key}@x>", "z@example.com"
    return {
        "id": mail_id,
        "application_id": app,
        "kind": kind,
        "message_id": message_id,
        "recipient": recipient,
        "sent_at": sent_at,
    }


OLD_MAILS = [_mail(1, 4, "refusal"), _mail(2, 6, "license"), _mail(3, 7, "license", LATER)]
OTHER_ROWS = {
    "application_events": [
        {"id": n, "application_id": n, "status": status, "at": NOW}
        for n, status in enumerate(STATUSES, start=1)
    ],
    "approval_events": [
        {
            "id": 1,
            "instance_id": "pi-3",
            "event_type": "finish",
            "result": "agree",
            "transport": "http",
            "application_id": 3,
            "outcome": "moved",
            "payload": "{}",
            "received_at": NOW,
        },
        {
            "id": 2,
            "instance_id": "pi-x",
            "event_type": "finish",
            "result": "agree",
            "transport": "stream",
            "application_id": None,
            "outcome": "unknown_instance",
            "payload": "{}",
            "received_at": NOW,
        },
    ],
    "rate_limits": [{"key": "ip:203.0.113.7", "window_start": 1763884800, "count": 3}],
    "callback_nonces": [{"key": "1763884800000:n0nce", "seen_at": NOW}],
    "dingtalk_tokens": [{"app_key": "dingpassappkey000001", "token": "t0k", "expires_at": LATER}],
}


def rows(engine, name: str) -> list[dict[str, object]]:
    """Every row of a table as the database has it now, read through reflection."""
    with engine.begin() as connection:
        table = sa.Table(name, sa.MetaData(), autoload_with=connection)
        query = select(table).order_by(*table.primary_key.columns)
        found = connection.execute(query).mappings()
        # MySQL's VARBINARY keys come back as bytes: compared as the text they hold.
        return [{k: v.decode() if isinstance(v, bytes) else v for k, v in r.items()} for r in found]


def test_every_revision_upgrades_a_database_with_applications_in_it(empty_database):
    migrate.upgrade(empty_database, "0001")
    with empty_database.begin() as connection:  # names only 0001's columns
        connection.execute(insert(applications).values(ROW))
        connection.execute(
            insert(application_events).values(application_id=1, status="submitted", at=NOW)
        )
    migrate.upgrade(empty_database)
    with empty_database.begin() as connection:
        kept = connection.execute(select(applications.c.company, applications.c.instance_id)).one()
    assert tuple(kept) == ("杭州示例", None)
    assert migrate.current(empty_database) == migrate.head()


def test_jobs_become_jobs_about_their_application_every_field_kept(filled_at_0003):
    before = rows(filled_at_0003, "jobs")
    migrate.upgrade(filled_at_0003, "0004")
    after = rows(filled_at_0003, "jobs")
    assert len(after) == len(before)
    for old, new in zip(before, after, strict=True):
        kept = {
            k: v
            for k, v in old.items()
            if k not in ("application_id", "depends_on", "max_attempts", "status", "last_error")
        }
        assert {k: new[k] for k in kept} == kept
        assert old["id"] == 9 or (new["status"], new["last_error"]) == (
            old["status"],
            old["last_error"],
        )
        assert (new["subject_type"], new["subject_id"]) == (
            "application",
            str(old["application_id"]),
        )
        assert new["dedupe_key"] == f"{old['kind']}:application:{old['application_id']}"
    assert rows(filled_at_0003, "job_dependencies") == [{"job_id": 7, "depends_on": 6}]


def test_a_job_whose_prerequisite_is_gone_is_failed_saying_why(filled_at_0003):
    migrate.upgrade(filled_at_0003, "0004")
    orphan = next(job for job in rows(filled_at_0003, "jobs") if job["id"] == 9)
    assert (orphan["status"], orphan["last_error"]) == (
        "failed",
        "the job it depended on no longer exists",
    )


def test_mails_become_mails_about_their_application(filled_at_0003):
    before = rows(filled_at_0003, "mails")
    migrate.upgrade(filled_at_0003, "0004")
    after = rows(filled_at_0003, "mails")
    for old, new in zip(before, after, strict=True):
        application_id = old.pop("application_id")
        assert (new.pop("subject_type"), new.pop("subject_id")) == (
            "application",
            str(application_id),
        )
        assert new == old


def test_the_other_tables_are_untouched(filled_at_0003):
    before = {
        table: rows(filled_at_0003, table) for table in ("applications", "licenses", *OTHER_ROWS)
    }
    assert all(before.values())
    migrate.upgrade(filled_at_0003, "0004")
    assert {table: rows(filled_at_0003, table) for table in before} == before


def test_the_code_takes_up_the_upgraded_work_where_it_stood(filled_at_0003, tmp_path):
    migrate.upgrade(filled_at_0003)
    database = Database(filled_at_0003.url.render_as_string(hide_password=False))
    with database.transaction() as connection:
        jobs = {job.id: job for job in queue.listing(connection)}
        assert all(by_id(connection, n).status == status for n, status in enumerate(STATUSES, 1))
        assert queue.dependencies(connection, 7) == [6]
    assert jobs[3].subject == Subject(SubjectType.APPLICATION, "3")
    assert jobs[5].condition == {"check": "smtp"} and jobs[7].payload == {"n": 1}
    claimed = queue.claim(database.transaction, "new-runner", NOW, timedelta(minutes=5))
    assert claimed is not None and claimed.id == 1  # the oldest due
    again = queue.claim(database.transaction, "new-runner", NOW, timedelta(minutes=5))
    assert again is not None and again.id == 5  # waiting, due; 3 is leased, 7 follows
    assert queue.claim(database.transaction, "new-runner", NOW, timedelta(minutes=5)).id == 7
    database.dispose()


def test_a_downgrade_gives_back_the_old_rows(filled_at_0003):
    before = {table: rows(filled_at_0003, table) for table in ("jobs", "mails")}
    migrate.upgrade(filled_at_0003, "0004")
    migrate.downgrade(filled_at_0003, "0003")
    after = {table: rows(filled_at_0003, table) for table in before}
    orphan = next(job for job in before["jobs"] if job["id"] == 9)
    orphan.update(status="failed", last_error="the job it depended on no longer exists")
    orphan["depends_on"] = None  # failed on the way up, with its dangling link dropped
    assert after == before


@pytest.mark.parametrize(
    ("table", "row"),
    [
        ("jobs", {"subject_type": "change", "subject_id": "7", "dedupe_key": "open:change:7"}),
        (
            "jobs",
            {"subject_type": "application", "subject_id": "x7", "dedupe_key": "w:application:x7"},
        ),
        ("mails", {"subject_type": "notification", "subject_id": "7", "message_id": "<n.7@x>"}),
    ],
)
def test_a_downgrade_is_refused_before_anything_changes(filled_at_0003, table, row):
    migrate.upgrade(filled_at_0003, "0004")
    template = rows(filled_at_0003, table)[0]
    with filled_at_0003.begin() as connection:
        columns = sa.table(table, *map(sa.column, template))
        connection.execute(insert(columns).values({**template, "id": 99, "kind": "w", **row}))
    before = {name: rows(filled_at_0003, name) for name in ("jobs", "job_dependencies", "mails")}
    with pytest.raises(DowngradeRefused, match="cannot downgrade below 0004"):
        migrate.downgrade(filled_at_0003, "0003")
    assert migrate.current(filled_at_0003) == "0004"
    assert {name: rows(filled_at_0003, name) for name in before} == before


def test_a_downgrade_is_refused_while_a_robot_message_is_unsent(filled_at_0003):
    migrate.upgrade(filled_at_0003)
    with filled_at_0003.begin() as connection:
        connection.execute(
            sa.text(
                "insert into robot_messages (robot, event, about_type, about_id, facts,"
                " recorded_at) values ('ops', 'refusal', 'application', '1', '{}', :now)"
            ),
            {"now": NOW.replace(tzinfo=None)},
        )
    with pytest.raises(DowngradeRefused, match="1 robot message"):
        migrate.downgrade(filled_at_0003, "0005")
    assert migrate.current(filled_at_0003) == migrate.head()
    assert len(rows(filled_at_0003, "robot_messages")) == 1


def test_a_downgrade_is_refused_while_a_change_is_unfinished(filled_at_0003):
    migrate.upgrade(filled_at_0003)
    with filled_at_0003.begin() as connection:
        connection.execute(
            sa.text(
                "insert into changes (public_id, request_id, request_hash, type, spec, status,"
                " created_at, updated_at) values ('chg-1', 'r1', 'h', 'vpc', '{}', 'running',"
                " :now, :now)"
            ),
            {"now": NOW.replace(tzinfo=None)},
        )
    with pytest.raises(DowngradeRefused, match="1 change"):
        migrate.downgrade(filled_at_0003, "0006")
    assert migrate.current(filled_at_0003) == migrate.head()
    assert len(rows(filled_at_0003, "changes")) == 1


def test_a_downgrade_below_0007_takes_the_finished_changes_step_jobs_with_it(filled_at_0003):
    migrate.upgrade(filled_at_0003)
    before = rows(filled_at_0003, "job_dependencies")
    database = Database(filled_at_0003.url.render_as_string(hide_password=False))
    with database.transaction() as connection:
        change = Subject(SubjectType.CHANGE, "7")
        vpc = queue.enqueue(connection, "change_step", change, NOW, part="vpc")
        queue.enqueue(connection, "change_step", change, NOW, part="vswitch", depends_on=[vpc])
        queue.cancel(connection, [vpc], NOW)
    database.dispose()
    migrate.downgrade(filled_at_0003, "0006")
    kinds = {row["kind"] for row in rows(filled_at_0003, "jobs")}
    assert "change_step" not in kinds and rows(filled_at_0003, "job_dependencies") == before


def test_a_downgrade_is_refused_while_jobs_need_the_new_shape(filled_at_0003):
    migrate.upgrade(filled_at_0003)
    database = Database(filled_at_0003.url.render_as_string(hide_password=False))
    with database.transaction() as connection:
        queue.enqueue(connection, "open_resource", Subject(SubjectType.CHANGE, "7"), NOW)
    database.dispose()
    columns = [c["name"] for c in sa.inspect(filled_at_0003).get_columns("applications")]
    with pytest.raises(DowngradeRefused, match="cannot downgrade below 0004"):
        migrate.downgrade(filled_at_0003, "0003")
    # Refused before any step ran: also on MySQL, where each step's DDL commits at once.
    assert migrate.current(filled_at_0003) == migrate.head()
    assert [c["name"] for c in sa.inspect(filled_at_0003).get_columns("applications")] == columns
    assert len(rows(filled_at_0003, "jobs")) == len(OLD_JOBS) + 1


def test_the_migrations_build_exactly_the_schema_the_code_declares(empty_database):
    migrate.upgrade(empty_database)
    with empty_database.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == [], differences


def test_the_command_refuses_an_unsafe_downgrade_in_words(tmp_path):
    url = f"sqlite:///{tmp_path}/dingpass.db"
    migrate.upgrade(make_engine(url))
    database = Database(url)
    with database.transaction() as connection:
        queue.enqueue(connection, "open_resource", Subject(SubjectType.CHANGE, "7"), NOW)
    database.dispose()
    env = {**os.environ, "DATABASE_URL": url, "CATALOGUE_FILE": str(CATALOGUE)}
    command = [str(SCRIPT), "db", "downgrade", "--revision", "0003"]
    done = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert (
        "dingpass: cannot downgrade below 0004: 1 job(s) and 0 mail(s) are not one-per-application"
        in done.stderr
    )
