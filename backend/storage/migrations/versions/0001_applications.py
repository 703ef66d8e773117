"""Applications, their status timeline, and rate-limit counters.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from backend.storage.schema import MYSQL, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "applications",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("number", sa.String(32), nullable=False, unique=True),
        sa.Column("token", sa.String(64), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("product", sa.String(64), nullable=False),
        sa.Column("product_version", sa.String(64), nullable=False),
        sa.Column("feature_code", sa.String(128), nullable=False),
        sa.Column("company", sa.String(100), nullable=False),
        sa.Column("contact", sa.String(50), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("validity", sa.String(16), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("client_ip", sa.String(45), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        **MYSQL,
    )
    op.create_table(
        "application_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "application_id",
            sa.Integer,
            sa.ForeignKey("applications.id"),
            nullable=False,
            index=True,
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        **MYSQL,
    )
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("window_start", sa.Integer, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        **MYSQL,
    )


def downgrade() -> None:
    op.drop_table("rate_limits")
    op.drop_table("application_events")
    op.drop_table("applications")
