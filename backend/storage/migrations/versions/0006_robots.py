"""Group robots: the messages they are to be told, and their budgets of sends a minute.

New tables only; downgrading drops them (messages still unsent are lost with them, as the
robots are with the code that sends to them).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from backend.storage.schema import MYSQL, UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "robot_messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("robot", sa.String(32), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("about_type", sa.String(32), nullable=False),
        sa.Column("about_id", sa.String(64), nullable=False),
        sa.Column("facts", sa.Text, nullable=False, server_default="{}"),
        sa.Column("recorded_at", UTCDateTime, nullable=False),
        sa.Column("batch", sa.Integer),
        sa.Column("sent_at", UTCDateTime),
        sa.UniqueConstraint(
            "robot", "event", "about_type", "about_id", name="uq_robot_messages_robot"
        ),
        **MYSQL,
    )
    op.create_index("ix_robot_messages_batch", "robot_messages", ["robot", "batch"])
    op.create_table(
        "robot_slots",
        sa.Column("robot", sa.String(32), primary_key=True),
        sa.Column("slot", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("used_at", UTCDateTime, nullable=False),
        **MYSQL,
    )


def downgrade() -> None:
    op.drop_table("robot_slots")
    op.drop_index("ix_robot_messages_batch", "robot_messages")
    op.drop_table("robot_messages")
