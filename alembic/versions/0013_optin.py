"""optin: double opt-in per petition, and the signatures waiting for confirmation

Revision ID: 0013_optin
Revises: 0012_fastcounts
Create Date: 2026-12-10 10:00:00
"""

from alembic import op
import sqlalchemy as sa

import engine.store.types


revision = "0013_optin"
down_revision = "0012_fastcounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("petitions") as batch:
        batch.add_column(
            sa.Column("double_opt_in", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(
            sa.Column("count_unconfirmed", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "pending_signatures",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("supporter_id", sa.Integer(), nullable=False),
        sa.Column("consents", sa.JSON(), nullable=False),
        sa.Column("requested_at", engine.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", engine.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", engine.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["petition_id"],
            ["petitions.id"],
            name=op.f("fk_pending_signatures_petition_id_petitions"),
        ),
        sa.ForeignKeyConstraint(
            ["supporter_id"],
            ["supporters.id"],
            name=op.f("fk_pending_signatures_supporter_id_supporters"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_signatures")),
        sa.UniqueConstraint(
            "petition_id",
            "supporter_id",
            name=op.f("uq_pending_signatures_petition_id_supporter_id"),
        ),
    )
    op.create_index(
        "ix_pending_signatures_expires_at", "pending_signatures", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_pending_signatures_expires_at", table_name="pending_signatures")
    op.drop_table("pending_signatures")
    with op.batch_alter_table("petitions") as batch:
        batch.drop_column("count_unconfirmed")
        batch.drop_column("double_opt_in")
