"""Resource changes: the apps that may ask for them, the changes, and their steps.

New tables only; downgrading drops them, and is refused while a change is unfinished (its
steps' jobs would run against tables that are gone).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from backend.exceptions import DowngradeRefused
from backend.storage.schema import MYSQL, ExactText, UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UNFINISHED = ("planned", "awaiting_approval", "running")
STEP_KIND = "change_step"


def upgrade() -> None:
    op.create_table(
        "api_apps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("app_key", ExactText(32), nullable=False),
        sa.Column("secret", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("disabled_at", UTCDateTime),
        sa.UniqueConstraint("app_key", name="uq_api_apps_app_key"),
        sa.UniqueConstraint("name", name="uq_api_apps_name"),
        **MYSQL,
    )
    op.create_table(
        "changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("public_id", ExactText(40), nullable=False),
        sa.Column("app_id", sa.Integer, sa.ForeignKey("api_apps.id", name="fk_changes_app_id")),
        sa.Column("request_id", ExactText(64), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime),
        sa.UniqueConstraint("public_id", name="uq_changes_public_id"),
        sa.UniqueConstraint("app_id", "request_id", name="uq_changes_app_id"),
        **MYSQL,
    )
    op.create_index("ix_changes_app_created", "changes", ["app_id", "created_at"])
    op.create_index("ix_changes_status", "changes", ["status"])
    op.create_table(
        "change_steps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "change_id",
            sa.Integer,
            sa.ForeignKey("changes.id", name="fk_change_steps_change_id"),
            nullable=False,
        ),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("inputs", sa.Text, nullable=False, server_default="{}"),
        sa.Column("needs", sa.Text, nullable=False, server_default="[]"),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id", name="fk_change_steps_job_id")),
        sa.Column("resource_id", sa.String(128)),
        sa.Column("results", sa.Text),
        sa.Column("checks", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("started_at", UTCDateTime),
        sa.Column("finished_at", UTCDateTime),
        sa.Column("deleted_at", UTCDateTime),
        sa.UniqueConstraint("change_id", "name", name="uq_change_steps_change_id"),
        **MYSQL,
    )


def downgrade() -> None:
    refuse_unless_downgradable(op.get_bind())
    op.drop_table("change_steps")
    _forget_step_jobs(op.get_bind())
    op.drop_index("ix_changes_status", "changes")
    op.drop_index("ix_changes_app_created", "changes")
    op.drop_table("changes")
    op.drop_table("api_apps")


def _forget_step_jobs(connection: sa.Connection) -> None:
    """Delete the finished changes' step jobs: older code knows neither their kind nor the
    status ``cancelled`` some of them end in, and would fail reading them."""
    jobs = sa.table("jobs", sa.column("id"), sa.column("kind"))
    edges = sa.table("job_dependencies", sa.column("job_id"), sa.column("depends_on"))
    steps = sa.select(jobs.c.id).where(jobs.c.kind == STEP_KIND).scalar_subquery()
    connection.execute(
        edges.delete().where(sa.or_(edges.c.job_id.in_(steps), edges.c.depends_on.in_(steps)))
    )
    connection.execute(jobs.delete().where(jobs.c.kind == STEP_KIND))


def refuse_unless_downgradable(connection: sa.Connection) -> None:
    """DowngradeRefused, before anything changes, while a change is still unfinished."""
    table = sa.table("changes", sa.column("status"))
    unfinished = connection.execute(
        sa.select(sa.func.count()).select_from(table).where(table.c.status.in_(UNFINISHED))
    ).scalar()
    if unfinished:
        raise DowngradeRefused(
            f"cannot downgrade below 0007: {unfinished} change(s) are unfinished and their "
            "steps would be lost. Let them finish (`dingpass changes list`), then downgrade."
        )
