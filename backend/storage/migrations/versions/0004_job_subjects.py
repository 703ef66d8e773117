"""Jobs and mails about any subject: dedupe keys, several dependencies per job.

A job was an application's job (application_id, unique per kind); it now has a subject
(type and id, or none), a unique dedupe key, and its dependencies in a table of their
own. A mail is about a subject too. Each table is rebuilt as a new one, filled with one
INSERT ... SELECT and renamed: the same statements on SQLite and MySQL, and no column
dropped under a foreign key. The retry policy moves to the code (the job kinds' registry),
so the jobs lose max_attempts.

Revision ID: 0004
Revises: 0003
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import SchemaItem

from backend.exceptions import DowngradeRefused
from backend.storage.schema import MYSQL, ExactText, UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COMMON_JOB_COLUMNS = (
    "id",
    "kind",
    "status",
    "attempts",
    "run_after",
    "last_error",
    "created_at",
    "updated_at",
    "payload",
    "condition",
    "leased_by",
    "lease_until",
    "version",
    "finished_at",
)


def _job_columns() -> list[SchemaItem]:
    return [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("run_after", UTCDateTime, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("payload", sa.Text, nullable=False, server_default="{}"),
        sa.Column("condition", sa.Text),
        sa.Column("leased_by", sa.String(64)),
        sa.Column("lease_until", UTCDateTime),
        sa.Column("version", sa.Integer, nullable=False, server_default="0"),
        sa.Column("finished_at", UTCDateTime),
    ]


def _mail_columns() -> list[SchemaItem]:
    return [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column("recipient", sa.String(254), nullable=False),
        sa.Column("sent_at", UTCDateTime),
        sa.UniqueConstraint("message_id", name="uq_mails_message_id"),
    ]


def _common() -> list[sa.ColumnClause[Any]]:
    # Typed where an expression needs it: kind + ':' + id must be a string concatenation.
    return [sa.column(n, sa.String) if n == "kind" else sa.column(n) for n in COMMON_JOB_COLUMNS]


OLD_JOBS = sa.table(
    "jobs",
    *_common(),
    sa.column("application_id", sa.Integer),
    sa.column("depends_on", sa.Integer),
    sa.column("max_attempts", sa.Integer),
)
NEW_JOBS = sa.table(
    "jobs",
    *_common(),
    sa.column("subject_type", sa.String),
    sa.column("subject_id", sa.String),
    sa.column("dedupe_key", sa.String),
)
DEPENDENCIES = sa.table(
    "job_dependencies", sa.column("job_id", sa.Integer), sa.column("depends_on", sa.Integer)
)
MAIL_COLUMNS = ("id", "kind", "message_id", "recipient", "sent_at")
OLD_MAILS = sa.table(
    "mails", *(sa.column(name) for name in MAIL_COLUMNS), sa.column("application_id", sa.Integer)
)
NEW_MAILS = sa.table(
    "mails",
    *(sa.column(name) for name in MAIL_COLUMNS),
    sa.column("subject_type", sa.String),
    sa.column("subject_id", sa.String),
)


def _replace(name: str, columns: list[SchemaItem], copy: sa.Select[Any]) -> None:
    """Rebuild table ``name`` with ``columns``, filled by ``copy`` (its columns in order).

    The old table stays as ``<name>_prev`` for the caller to read from, then drop. A
    ``<name>_next`` left by an interrupted run (MySQL commits each DDL statement) goes first.
    """
    op.drop_table(f"{name}_next", if_exists=True)
    op.create_table(f"{name}_next", *columns, **MYSQL)
    names = [c.name for c in columns if isinstance(c, sa.Column)]
    target = sa.table(f"{name}_next", *map(sa.column, names))
    op.get_bind().execute(target.insert().from_select(names, copy))
    op.rename_table(name, f"{name}_prev")
    op.rename_table(f"{name}_next", name)


def upgrade() -> None:
    _rebuild_jobs()
    _rebuild_mails()


def _rebuild_jobs() -> None:
    columns: list[SchemaItem] = [
        *_job_columns(),
        sa.Column("subject_type", sa.String(32)),
        sa.Column("subject_id", sa.String(64)),
        sa.Column("dedupe_key", ExactText(191), nullable=False),
        sa.UniqueConstraint("dedupe_key", name="uq_jobs_dedupe_key"),
    ]
    subject_id = sa.cast(OLD_JOBS.c.application_id, sa.String(64))
    key = OLD_JOBS.c.kind + sa.literal(":application:") + subject_id
    old = (OLD_JOBS.c[name] for name in COMMON_JOB_COLUMNS)
    _replace("jobs", columns, sa.select(*old, sa.literal("application"), subject_id, key))
    _move_dependencies()
    op.drop_table("jobs_prev")
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_index("ix_jobs_due", "jobs", ["status", "run_after"])
    op.create_index("ix_jobs_subject", "jobs", ["subject_type", "subject_id"])


def _move_dependencies() -> None:
    """Each depends_on becomes a row of job_dependencies; a dangling one fails its job.

    Revision 0003 had no constraint on depends_on: a job whose prerequisite is gone could never
    run. A foreign key cannot point at nothing, so such a job is failed, saying why, rather than
    set free to run or kept waiting where nobody looks.
    """
    op.create_table(
        "job_dependencies",
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), primary_key=True),
        sa.Column("depends_on", sa.Integer, sa.ForeignKey("jobs.id"), primary_key=True),
        **MYSQL,
    )
    op.create_index("ix_job_dependencies_depends_on", "job_dependencies", ["depends_on"])
    old, jobs = sa.table("jobs_prev", sa.column("id"), sa.column("depends_on")), NEW_JOBS
    present = sa.select(jobs.c.id).where(jobs.c.id == old.c.depends_on).exists()
    edges = sa.select(old.c.id, old.c.depends_on).where(old.c.depends_on.is_not(None))
    connection = op.get_bind()
    connection.execute(
        DEPENDENCIES.insert().from_select(["job_id", "depends_on"], edges.where(present))
    )
    dangling = sa.select(old.c.id).where(old.c.depends_on.is_not(None), ~present)
    connection.execute(
        jobs.update()
        .where(jobs.c.id.in_(dangling), jobs.c.status.in_(["queued", "waiting"]))
        .values(status="failed", last_error="the job it depended on no longer exists")
    )


def _rebuild_mails() -> None:
    columns: list[SchemaItem] = [
        *_mail_columns(),
        sa.Column("subject_type", sa.String(32), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.UniqueConstraint("subject_type", "subject_id", "kind", name="uq_mails_subject_type"),
    ]
    subject_id = sa.cast(OLD_MAILS.c.application_id, sa.String(64))
    old = (OLD_MAILS.c[name] for name in MAIL_COLUMNS)
    _replace("mails", columns, sa.select(*old, sa.literal("application"), subject_id))
    op.drop_table("mails_prev")


def downgrade() -> None:
    """Back to jobs and mails of applications only, where nothing newer needs the new shape."""
    refuse_unless_downgradable(op.get_bind())
    _restore_jobs()
    _restore_mails()


def refuse_unless_downgradable(connection: sa.Connection) -> None:
    """DowngradeRefused, before anything changes, if 0003's tables cannot hold every row.

    backend.storage.migrate runs it before the first step of any downgrade that passes here.
    """
    odd_jobs = connection.execute(
        sa.select(sa.func.count())
        .select_from(NEW_JOBS)
        .where(
            sa.or_(
                _not_an_application(NEW_JOBS.c.subject_type, NEW_JOBS.c.subject_id),
                NEW_JOBS.c.dedupe_key
                != NEW_JOBS.c.kind + sa.literal(":application:") + NEW_JOBS.c.subject_id,
            )
        )
    ).scalar()
    odd_mails = connection.execute(
        sa.select(sa.func.count())
        .select_from(NEW_MAILS)
        .where(_not_an_application(NEW_MAILS.c.subject_type, NEW_MAILS.c.subject_id))
    ).scalar()
    fan_in = connection.execute(
        sa.select(DEPENDENCIES.c.job_id)
        .group_by(DEPENDENCIES.c.job_id)
        .having(sa.func.count() > 1)
        .limit(1)
    ).first()
    if odd_jobs or odd_mails or fan_in is not None:
        raise DowngradeRefused(
            f"cannot downgrade below 0004: {odd_jobs} job(s) and {odd_mails} mail(s) are not "
            "one-per-application, or a job depends on several, and revision 0003 cannot hold "
            "them. Let them finish, or restore the backup taken before the upgrade."
        )


def _not_an_application(
    subject_type: sa.ColumnElement[object], subject_id: sa.ColumnElement[object]
) -> sa.ColumnElement[bool]:
    # SQLAlchemy gives SQLite a REGEXP function; MySQL has its own.
    numbered = subject_id.regexp_match("^[0-9]+$")
    return sa.or_(subject_type.is_(None), subject_type != "application", ~numbered)


def _restore_jobs() -> None:
    columns: list[SchemaItem] = [
        *_job_columns(),
        sa.Column("application_id", sa.Integer, sa.ForeignKey("applications.id"), nullable=False),
        sa.Column("depends_on", sa.Integer),
        sa.Column("max_attempts", sa.Integer, nullable=False, server_default="5"),
        sa.UniqueConstraint("kind", "application_id", name="uq_jobs_kind"),
    ]
    new = (NEW_JOBS.c[name] for name in COMMON_JOB_COLUMNS)
    application_id = sa.cast(NEW_JOBS.c.subject_id, sa.Integer)
    prerequisite = (
        sa.select(DEPENDENCIES.c.depends_on)
        .where(DEPENDENCIES.c.job_id == NEW_JOBS.c.id)
        .scalar_subquery()
    )
    # max_attempts takes 0003's default: the policy lives in the code's registry now.
    _replace("jobs", columns, sa.select(*new, application_id, prerequisite, sa.literal(5)))
    op.drop_table("job_dependencies")
    op.drop_table("jobs_prev")
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_index("ix_jobs_due", "jobs", ["status", "run_after"])


def _restore_mails() -> None:
    columns: list[SchemaItem] = [
        *_mail_columns(),
        sa.Column("application_id", sa.Integer, sa.ForeignKey("applications.id"), nullable=False),
        sa.UniqueConstraint("application_id", "kind", name="uq_mails_application_id"),
    ]
    new = (NEW_MAILS.c[name] for name in MAIL_COLUMNS)
    _replace("mails", columns, sa.select(*new, sa.cast(NEW_MAILS.c.subject_id, sa.Integer)))
    op.drop_table("mails_prev")
