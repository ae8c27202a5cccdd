"""donations: attribution, refunds and cancellations; clicks: automated flag

A gift is tied to the email that led to it (`message_id`, and how: `reference` when the
payment platform handed back the link's reference, `last_click` otherwise). A refund or
a cancelled monthly gift keeps the row and dates the change, so that totals stay exact.
A click made by a prefetcher or a security scanner is kept but flagged `automated`, and
left out of rates.

Revision ID: 0008_gift_attribution
Revises: 0007_enrol_cursors
Create Date: 2026-12-06 10:00:00
"""

from alembic import op
import sqlalchemy as sa

import engine.store.types


revision = "0008_gift_attribution"
down_revision = "0007_enrol_cursors"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("donations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "message_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
            )
        )
        batch_op.add_column(sa.Column("attributed_by", sa.String(length=20), nullable=True))
        batch_op.add_column(
            sa.Column("refunded_at", engine.store.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("cancelled_at", engine.store.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_donations_message_id_outbox"),
            "outbox",
            ["message_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index("ix_donations_message", ["message_id"], unique=False)
    with op.batch_alter_table("clicks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("automated", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("clicks", schema=None) as batch_op:
        batch_op.drop_column("automated")
    with op.batch_alter_table("donations", schema=None) as batch_op:
        batch_op.drop_index("ix_donations_message")
        batch_op.drop_constraint(batch_op.f("fk_donations_message_id_outbox"), type_="foreignkey")
        batch_op.drop_column("cancelled_at")
        batch_op.drop_column("refunded_at")
        batch_op.drop_column("attributed_by")
        batch_op.drop_column("message_id")
