"""Activation codes: batches, codes known by their keyed hash, and what each app may do.

New tables and one column with a default (every existing app keeps the changes API, which
was all an app could use); downgrading drops them, and is refused while a code is unused
(its holder could no longer redeem it).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from backend.exceptions import DowngradeRefused
from backend.storage.schema import MYSQL, ExactText, UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "api_apps",
        sa.Column("scopes", sa.String(200), nullable=False, server_default="changes"),
    )
    op.create_table(
        "code_batches",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("public_id", ExactText(40), nullable=False),
        sa.Column("product", sa.String(64), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("validity", sa.String(16), nullable=False),
        sa.Column("valid_from", UTCDateTime, nullable=False),
        sa.Column("valid_until", UTCDateTime, nullable=False),
        sa.Column("note", sa.String(200), nullable=False, server_default=""),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column(
            "app_id", sa.Integer, sa.ForeignKey("api_apps.id", name="fk_code_batches_app_id")
        ),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("deleted_at", UTCDateTime),
        sa.UniqueConstraint("public_id", name="uq_code_batches_public_id"),
        **MYSQL,
    )
    op.create_table(
        "activation_codes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "batch_id",
            sa.Integer,
            sa.ForeignKey("code_batches.id", name="fk_activation_codes_batch_id"),
            nullable=False,
        ),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("redeemed_at", UTCDateTime),
        sa.Column(
            "application_id",
            sa.Integer,
            sa.ForeignKey("applications.id", name="fk_activation_codes_application_id"),
        ),
        sa.Column("redeemed_by", sa.String(64)),
        sa.Column("deleted_at", UTCDateTime),
        sa.UniqueConstraint("code_hash", name="uq_activation_codes_code_hash"),
        sa.UniqueConstraint("application_id", name="uq_activation_codes_application_id"),
        **MYSQL,
    )
    op.create_index("ix_activation_codes_batch_id", "activation_codes", ["batch_id"])


def downgrade() -> None:
    refuse_unless_downgradable(op.get_bind())
    op.drop_table("activation_codes")
    op.drop_table("code_batches")
    with op.batch_alter_table("api_apps") as batch:
        batch.drop_column("scopes")


def refuse_unless_downgradable(connection: sa.Connection) -> None:
    """DowngradeRefused, before anything changes, while a code could still be redeemed."""
    codes = sa.table("activation_codes", sa.column("redeemed_at"), sa.column("deleted_at"))
    unused = connection.execute(
        sa.select(sa.func.count())
        .select_from(codes)
        .where(codes.c.redeemed_at.is_(None), codes.c.deleted_at.is_(None))
    ).scalar()
    if unused:
        raise DowngradeRefused(
            f"cannot downgrade below 0008: {unused} activation code(s) are unused and could "
            "no longer be redeemed. Delete their batches (`dingpass codes delete-batch ID`), then "
            "downgrade."
        )
