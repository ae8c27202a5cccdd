"""signature_days: a petition's signatures per UTC day, kept exact as they are recorded

A funnel's signatures per day read these rows, one a day, instead of grouping every
signature (0.7 s on SQLite, 0.15 s on PostgreSQL over 1,000,000 signatures). The statements
that record signatures add each batch's to its days (engine/store/signatures.py); this
migration counts those already there.

Revision ID: 0015_signature_days
Revises: 0014_key_prefix
Create Date: 2026-12-13 08:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = "0015_signature_days"
down_revision = "0014_key_prefix"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signature_days",
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("signatures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("petition_id", "day", name=op.f("pk_signature_days")),
    )
    if op.get_bind().dialect.name == "postgresql":
        day = "date(timezone('UTC', signed_at))"
    else:
        day = "date(signed_at)"  # SQLite stores UTC text
    op.execute(
        "INSERT INTO signature_days (petition_id, day, signatures) "
        f"SELECT petition_id, {day}, count(*) FROM signatures GROUP BY petition_id, {day}"
    )


def downgrade() -> None:
    op.drop_table("signature_days")
