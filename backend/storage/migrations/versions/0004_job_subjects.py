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

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import SchemaItem

from backend.exceptions import DowngradeRefused
from backend.storage.schema import MYSQL, UTCDateTime

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


def _common() -> list[sa.ColumnClause[object]]:
    # Typed where an expression needs it: kind + ':' + id must be a string concatenation.
    return [sa.column(name, sa.String if name == "kind" else None) for name in COMMON_JOB_COLUMNS]


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
DEPENDENCIES = sa.table("job_dependencies", sa.column("job_id"), sa.column("depends_on"))
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


def _replace(name: str, columns: list[SchemaItem], copy: sa.Select[object]) -> None:
    """Rebuild table ``name`` with ``columns``, filled by ``copy`` (its columns in order)."""
    op.create_table(f"{name}_next", *columns, **MYSQL)
    names = [c.name for c in columns if isinstance(c, sa.Column)]
    target = sa.table(f"{name}_next", *map(sa.column, names))
    op.get_bind().execute(target.insert().from_select(names, copy))
    op.drop_table(name)
    op.rename_table(f"{name}_next", name)


def upgrade() -> None:
    edges = _old_dependencies()  # read before the old table goes; there are few
    _rebuild_jobs()
    _create_dependencies(edges)
    _rebuild_mails()


def _old_dependencies() -> list[dict[str, int]]:
    old, prerequisite = OLD_JOBS.alias("old"), OLD_JOBS.alias("prerequisite")
    query = sa.select(old.c.id, old.c.depends_on).join(
        prerequisite, prerequisite.c.id == old.c.depends_on
    )  # a dangling id had no constraint to stop it; it is dropped rather than kept dangling
    rows = op.get_bind().execute(query).all()
    return [{"job_id": job_id, "depends_on": other} for job_id, other in rows]


def _rebuild_jobs() -> None:
    columns: list[SchemaItem] = [
        *_job_columns(),
        sa.Column("subject_type", sa.String(32)),
        sa.Column("subject_id", sa.String(64)),
        sa.Column("dedupe_key", sa.String(191), nullable=False),
        sa.UniqueConstraint("dedupe_key", name="uq_jobs_dedupe_key"),
    ]
    subject_id = sa.cast(OLD_JOBS.c.application_id, sa.String(64))
    key = OLD_JOBS.c.kind + sa.literal(":application:") + subject_id
    old = (OLD_JOBS.c[name] for name in COMMON_JOB_COLUMNS)
    _replace("jobs", columns, sa.select(*old, sa.literal("application"), subject_id, key))
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_index("ix_jobs_due", "jobs", ["status", "run_after"])
    op.create_index("ix_jobs_subject", "jobs", ["subject_type", "subject_id"])


def _create_dependencies(edges: list[dict[str, int]]) -> None:
    op.create_table(
        "job_dependencies",
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), primary_key=True),
        sa.Column("depends_on", sa.Integer, sa.ForeignKey("jobs.id"), primary_key=True),
        **MYSQL,
    )
    op.create_index("ix_job_dependencies_depends_on", "job_dependencies", ["depends_on"])
    if edges:
        op.get_bind().execute(DEPENDENCIES.insert(), edges)


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


def downgrade() -> None:
    """Back to jobs and mails of applications only, where nothing newer needs the new shape."""
    _refuse_unless_downgradable()
    edges = op.get_bind().execute(sa.select(DEPENDENCIES.c.job_id, DEPENDENCIES.c.depends_on)).all()
    op.drop_table("job_dependencies")
    _restore_jobs(dict(edges))
    _restore_mails()


def _refuse_unless_downgradable() -> None:
    connection = op.get_bind()
    others = connection.execute(
        sa.select(sa.func.count())
        .select_from(NEW_JOBS)
        .where(
            sa.or_(
                NEW_JOBS.c.subject_type.is_(None),
                NEW_JOBS.c.subject_type != "application",
                NEW_JOBS.c.dedupe_key
                != NEW_JOBS.c.kind + sa.literal(":application:") + NEW_JOBS.c.subject_id,
            )
        )
    ).scalar()
    fan_in = connection.execute(
        sa.select(DEPENDENCIES.c.job_id)
        .group_by(DEPENDENCIES.c.job_id)
        .having(sa.func.count() > 1)
        .limit(1)
    ).first()
    if others or fan_in is not None:
        raise DowngradeRefused(
            "cannot downgrade below 0004: some jobs are not one-per-application jobs, or depend "
            "on several jobs, and revision 0003 cannot hold them. Let them finish, or restore "
            "the backup taken before the upgrade."
        )


def _restore_jobs(edges: dict[int, int]) -> None:
    columns: list[SchemaItem] = [
        *_job_columns(),
        sa.Column("application_id", sa.Integer, sa.ForeignKey("applications.id"), nullable=False),
        sa.Column("depends_on", sa.Integer),
        sa.Column("max_attempts", sa.Integer, nullable=False, server_default="5"),
        sa.UniqueConstraint("kind", "application_id", name="uq_jobs_kind"),
    ]
    new = (NEW_JOBS.c[name] for name in COMMON_JOB_COLUMNS)
    application_id = sa.cast(NEW_JOBS.c.subject_id, sa.Integer)
    # depends_on and max_attempts take their defaults here, and the edges just below.
    _replace("jobs", columns, sa.select(*new, application_id, sa.null(), sa.literal(5)))
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_index("ix_jobs_due", "jobs", ["status", "run_after"])
    for job_id, other in edges.items():
        op.get_bind().execute(
            OLD_JOBS.update().where(OLD_JOBS.c.id == job_id).values(depends_on=other)
        )


def _restore_mails() -> None:
    columns: list[SchemaItem] = [
        *_mail_columns(),
        sa.Column("application_id", sa.Integer, sa.ForeignKey("applications.id"), nullable=False),
        sa.UniqueConstraint("application_id", "kind", name="uq_mails_application_id"),
    ]
    new = (NEW_MAILS.c[name] for name in MAIL_COLUMNS)
    _replace("mails", columns, sa.select(*new, sa.cast(NEW_MAILS.c.subject_id, sa.Integer)))
