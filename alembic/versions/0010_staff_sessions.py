"""staff_sessions: a dashboard sign-in is a row, and signing out deletes it

The session cookie named the API key, so a cookie kept after signing out still opened the
dashboard until it expired. It now names a random session whose row signing out deletes.

Revision ID: 0010_staff_sessions
Revises: 0009_rights
Create Date: 2026-12-08 10:00:00
"""

from alembic import op
import sqlalchemy as sa

import engine.store.types


revision = "0010_staff_sessions"
down_revision = "0009_rights"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("created_at", engine.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["api_keys.id"],
            name=op.f("fk_staff_sessions_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_staff_sessions")),
    )
    op.create_index("ix_staff_sessions_key_id", "staff_sessions", ["key_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_staff_sessions_key_id", table_name="staff_sessions")
    op.drop_table("staff_sessions")
