"""Changes approved in DingTalk: who asked and how, the gating instance, and its decision.

Nullable columns (and one with a default: every existing change came through the API) and a
unique index; downgrading drops them, and is refused while a change awaits its approval or
came from DingTalk (its record of who asked would be gone).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

from backend.exceptions import DowngradeRefused
from backend.storage.schema import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COLUMNS = (
    "decided_at",
    "approval",
    "instance_requested_at",
    "instance_id",
    "approval_form",
    "callback_url",
    "requester",
    "origin",
)


def upgrade() -> None:
    op.add_column(
        "changes", sa.Column("origin", sa.String(16), nullable=False, server_default="api")
    )
    op.add_column("changes", sa.Column("requester", sa.String(128)))
    op.add_column("changes", sa.Column("callback_url", sa.Text))
    op.add_column("changes", sa.Column("approval_form", sa.String(64)))
    op.add_column("changes", sa.Column("instance_id", sa.String(64)))
    op.add_column("changes", sa.Column("instance_requested_at", UTCDateTime))
    op.add_column("changes", sa.Column("approval", sa.String(16)))
    op.add_column("changes", sa.Column("decided_at", UTCDateTime))
    op.create_index("uq_changes_instance_id", "changes", ["instance_id"], unique=True)
    with op.batch_alter_table("approval_events") as batch:
        batch.add_column(sa.Column("change_id", sa.Integer))
        batch.create_foreign_key("fk_approval_events_change_id", "changes", ["change_id"], ["id"])


def downgrade() -> None:
    connection = op.get_bind()
    changes = sa.table("changes", sa.column("origin"), sa.column("status"))
    waiting = connection.execute(
        sa.select(sa.func.count())
        .select_from(changes)
        .where(sa.or_(changes.c.origin != "api", changes.c.status == "awaiting_approval"))
    ).scalar()
    if waiting:
        raise DowngradeRefused(
            f"{waiting} change(s) await an approval or came from DingTalk: revision 0008 "
            "cannot hold them. Let them finish (or keep this version)."
        )
    with op.batch_alter_table("approval_events") as batch:
        batch.drop_constraint("fk_approval_events_change_id", type_="foreignkey")
        batch.drop_column("change_id")
    op.drop_index("uq_changes_instance_id", "changes")
    for column in COLUMNS:
        op.drop_column("changes", column)
