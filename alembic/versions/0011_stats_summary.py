"""message_counts, step_counts: the figures, kept exact as events arrive

`step_counts` holds one row per journey, step and variant (sent, delivered, bounced,
unsubscribed, clickers, clicks, donors, gifts, one-off and monthly revenue), so that a
funnel reads a few rows whatever the number of events; `message_counts` holds what each
email has produced so far, so that a change is added to its step once, as a difference
(engine/store/counts.py). A database that already has sent emails fills them once with
`mobilise stats --rebuild`.

Revision ID: 0011_stats_summary
Revises: 0010_staff_sessions
Create Date: 2026-12-07 10:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = "0011_stats_summary"
down_revision = "0010_staff_sessions"
branch_labels = None
depends_on = None

COUNTS = ("sent", "delivered", "bounced", "unsubscribed")


def upgrade() -> None:
    op.create_table(
        "message_counts",
        sa.Column("message_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("journey_id", sa.String(length=100), nullable=False),
        sa.Column("step_id", sa.String(length=60), nullable=False),
        sa.Column("variant", sa.String(length=20), nullable=False),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in (*COUNTS, "clicks", "gifts")],
        sa.Column("one_off_cents", sa.BigInteger(), nullable=False),
        sa.Column("monthly_cents", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_message_counts")),
    )
    op.create_table(
        "step_counts",
        sa.Column("journey_id", sa.String(length=100), nullable=False),
        sa.Column("step_id", sa.String(length=60), nullable=False),
        sa.Column("variant", sa.String(length=20), nullable=False),
        *[
            sa.Column(name, sa.BigInteger(), nullable=False)
            for name in (*COUNTS, "clickers", "clicks", "donors", "gifts")
        ],
        sa.Column("one_off_cents", sa.BigInteger(), nullable=False),
        sa.Column("monthly_cents", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("journey_id", "step_id", "variant", name=op.f("pk_step_counts")),
    )


def downgrade() -> None:
    op.drop_table("step_counts")
    op.drop_table("message_counts")
