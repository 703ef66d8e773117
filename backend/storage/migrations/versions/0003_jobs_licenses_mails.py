"""Jobs become a sound queue (lease, version, dependencies, conditions); licenses and mails.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from backend.storage.schema import MYSQL, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JOB_COLUMNS = (
    sa.Column("payload", sa.Text, nullable=False, server_default="{}"),
    sa.Column("depends_on", sa.Integer),  # a job id; no constraint, so SQLite needs no rebuild
    sa.Column("condition", sa.Text),
    sa.Column("max_attempts", sa.Integer, nullable=False, server_default="5"),
    sa.Column("leased_by", sa.String(64)),
    sa.Column("lease_until", UTCDateTime),
    sa.Column("version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("finished_at", UTCDateTime),
)


def upgrade() -> None:
    for column in JOB_COLUMNS:
        op.add_column("jobs", column)
    op.create_index("ix_jobs_due", "jobs", ["status", "run_after"])
    op.create_table(
        "licenses",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "application_id",
            sa.Integer,
            sa.ForeignKey("applications.id"),
            nullable=False,
            unique=True,
        ),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("issued_at", UTCDateTime, nullable=False),
        sa.Column("valid_until", UTCDateTime),
        **MYSQL,
    )
    op.create_table(
        "mails",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "application_id",
            sa.Integer,
            sa.ForeignKey("applications.id"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("message_id", sa.String(200), nullable=False, unique=True),
        sa.Column("recipient", sa.String(254), nullable=False),
        sa.Column("sent_at", UTCDateTime),
        sa.UniqueConstraint("application_id", "kind", name="uq_mails_application_id"),
        **MYSQL,
    )


def downgrade() -> None:
    op.drop_table("mails")
    op.drop_table("licenses")
    op.drop_index("ix_jobs_due", "jobs")
    for column in reversed(JOB_COLUMNS):
        op.drop_column("jobs", column.name)
