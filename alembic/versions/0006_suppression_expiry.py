"""suppressions: expires_at (NULL: for good), and the supporter index carries it

A temporary suppression (a SendGrid block) ends at `expires_at`. Every read of what is in
force filters `expires_at IS NULL OR expires_at > now` per supporter: the supporter index
becomes (supporter_id, expires_at) so that the filter is answered from the index.

Revision ID: 0006_suppression_expiry
Revises: 0004
Create Date: 2026-12-02 10:00:00
"""

from alembic import op
import sqlalchemy as sa

import engine.store.types


revision = '0006_suppression_expiry'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('suppressions', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('expires_at', engine.store.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.drop_index('ix_suppressions_supporter')
        batch_op.create_index(
            'ix_suppressions_supporter', ['supporter_id', 'expires_at'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('suppressions', schema=None) as batch_op:
        batch_op.drop_index('ix_suppressions_supporter')
        batch_op.create_index('ix_suppressions_supporter', ['supporter_id'], unique=False)
        batch_op.drop_column('expires_at')
