"""donations.subscription_id: the payment platform's id of the monthly gift a payment is of

A giver may hold two monthly gifts (two mandates at the platform): ending one must not end
the other. A payment that names its subscription is cancelled with that subscription's
payments only; one that does not, with its giver's monthly payments, as before.

Revision ID: 0016_subscription_id
Revises: 0015_signature_days
Create Date: 2026-12-14 08:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = "0016_subscription_id"
down_revision = "0015_signature_days"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("donations") as batch:
        batch.add_column(sa.Column("subscription_id", sa.String(length=100), nullable=True))
    op.create_index("ix_donations_subscription", "donations", ["subscription_id"])


def downgrade() -> None:
    op.drop_index("ix_donations_subscription", table_name="donations")
    with op.batch_alter_table("donations") as batch:
        batch.drop_column("subscription_id")
