"""Approval instances and events, jobs, callback nonces, and the shared access token.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from backend.storage.schema import MYSQL, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column and a unique index: no table rebuild, which SQLite would refuse
    # for a table other tables' foreign keys point at.
    op.add_column("applications", sa.Column("instance_id", sa.String(64)))
    op.create_index("uq_applications_instance_id", "applications", ["instance_id"], unique=True)
    op.create_table(
        "approval_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("instance_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(16), nullable=False),
        sa.Column("result", sa.String(16)),
        sa.Column("transport", sa.String(16), nullable=False),
        sa.Column("application_id", sa.Integer, sa.ForeignKey("applications.id")),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("instance_id", "event_type", name="uq_approval_events_instance_id"),
        **MYSQL,
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column(
            "application_id",
            sa.Integer,
            sa.ForeignKey("applications.id"),
            nullable=False,
        ),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("run_after", UTCDateTime, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("kind", "application_id", name="uq_jobs_kind"),
        **MYSQL,
    )
    op.create_table(
        "callback_nonces",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("seen_at", UTCDateTime, nullable=False, index=True),
        **MYSQL,
    )
    op.create_table(
        "dingtalk_tokens",
        sa.Column("app_key", sa.String(100), primary_key=True),
        sa.Column("token", sa.String(200), nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        **MYSQL,
    )


def downgrade() -> None:
    op.drop_table("dingtalk_tokens")
    op.drop_table("callback_nonces")
    op.drop_table("jobs")
    op.drop_table("approval_events")
    op.drop_index("uq_applications_instance_id", "applications")
    op.drop_column("applications", "instance_id")
