"""DingTalk's limits kept by every function instance together, and searches remembered.

``dingtalk_call_slots`` holds, per app key and API, the next moment a call may be sent: the
function instances share DingTalk's 20 calls per second per API through it. ``searched_instances``
keeps what a search for an earlier start read from each instance, so no instance is fetched
twice. Both hold only what can be learnt again: downgrading drops them.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

from backend.storage.schema import MYSQL, UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dingtalk_call_slots",
        sa.Column("app_key", sa.String(100), primary_key=True),
        sa.Column("api", sa.String(32), primary_key=True),
        sa.Column("next_at", sa.BigInteger, nullable=False),
        **MYSQL,
    )
    op.create_table(
        "searched_instances",
        sa.Column("instance_id", sa.String(64), primary_key=True),
        sa.Column("form", sa.Text, nullable=False),
        sa.Column("seen_at", UTCDateTime, nullable=False),
        **MYSQL,
    )
    op.create_index("ix_searched_instances_seen_at", "searched_instances", ["seen_at"])


def downgrade() -> None:
    op.drop_table("searched_instances")
    op.drop_table("dingtalk_call_slots")
