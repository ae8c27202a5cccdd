"""message_counts without `sent`: an email's `sent` is counted where it is marked sent

The dispatcher's results, ambiguous sends confirmed and the simulator's virtual sends add
the rows their UPDATE moved to `sent` to `step_counts` directly, one upsert per batch
(engine/store/counts.py); an email has a `message_counts` row from its first delivery
event, click, unsubscribe or gift on. The summary rows keep their meaning: nothing to
recount.

Revision ID: 0012_fastcounts
Revises: 0011_stats_summary
Create Date: 2026-12-08 12:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = "0012_fastcounts"
down_revision = "0011_stats_summary"
branch_labels = None
depends_on = None

OTHERS = ("delivered", "bounced", "unsubscribed", "clicks", "gifts", "one_off_cents",
          "monthly_cents")


def upgrade() -> None:
    with op.batch_alter_table("message_counts") as batch:
        batch.drop_column("sent")


def downgrade() -> None:
    # Every sent email had its row, holding sent = 1.
    with op.batch_alter_table("message_counts") as batch:
        batch.add_column(sa.Column("sent", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE message_counts SET sent = 1 WHERE EXISTS (SELECT 1 FROM outbox o"
        " WHERE o.id = message_counts.message_id AND o.status = 'sent')"
    )
    op.execute(
        "INSERT INTO message_counts (message_id, journey_id, step_id, variant, sent, "
        + ", ".join(OTHERS)
        + ") SELECT o.id, o.journey_id, o.step_id, COALESCE(o.variant, ''), 1, "
        + ", ".join("0" for _ in OTHERS)
        + " FROM outbox o WHERE o.status = 'sent' AND NOT EXISTS"
        " (SELECT 1 FROM message_counts m WHERE m.message_id = o.id)"
    )
    with op.batch_alter_table("message_counts") as batch:
        batch.alter_column("sent", server_default=None)
