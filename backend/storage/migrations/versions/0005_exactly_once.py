"""What exactly-once needs on record: idempotency keys, unanswered starts, mails handed over,
and when a job's current run of attempts began.

Nullable columns and a unique index only: no table is rebuilt, and existing rows mean what
they meant (no key, no start in doubt, no mail in doubt, trying since they were recorded).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from backend.storage.schema import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("applications", sa.Column("idempotency_key", sa.String(64)))
    op.add_column("applications", sa.Column("request_hash", sa.String(64)))
    op.add_column("applications", sa.Column("instance_requested_at", UTCDateTime))
    op.create_index(
        "uq_applications_idempotency_key", "applications", ["idempotency_key"], unique=True
    )
    op.add_column("mails", sa.Column("handed_over_at", UTCDateTime))
    op.add_column("jobs", sa.Column("tries_since", UTCDateTime))
    jobs = sa.table("jobs", sa.column("tries_since"), sa.column("created_at"))
    op.get_bind().execute(jobs.update().values(tries_since=jobs.c.created_at))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+): a batch rebuild of applications would trip the foreign
    # keys that point at it.
    op.drop_column("jobs", "tries_since")
    op.drop_column("mails", "handed_over_at")
    op.drop_index("uq_applications_idempotency_key", "applications")
    for column in ("instance_requested_at", "request_hash", "idempotency_key"):
        op.drop_column("applications", column)
