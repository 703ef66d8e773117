"""Group robots: the messages they are to be told, and their budgets of sends a minute.

New tables only; downgrading drops them, and is refused while a message is still unsent
(it would be lost with them).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from backend.exceptions import DowngradeRefused
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
    refuse_unless_downgradable(op.get_bind())
    op.drop_table("robot_slots")
    op.drop_index("ix_robot_messages_batch", "robot_messages")
    op.drop_table("robot_messages")


def refuse_unless_downgradable(connection: sa.Connection) -> None:
    """DowngradeRefused, before anything changes, while a robot message is still unsent.

    backend.storage.migrate runs it before the first step of any downgrade that passes here.
    """
    messages = sa.table("robot_messages", sa.column("sent_at"))
    unsent = connection.execute(
        sa.select(sa.func.count()).select_from(messages).where(messages.c.sent_at.is_(None))
    ).scalar()
    if unsent:
        raise DowngradeRefused(
            f"cannot downgrade below 0006: {unsent} robot message(s) are not sent yet and would "
            "be lost. Let the runner send them (`dingpass jobs list`), then downgrade."
        )
