"""signatures: the paper key's unique index only over paper signatures

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 20:25:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

_PAPER = sa.text('paper_key IS NOT NULL')


def upgrade() -> None:
    with op.batch_alter_table('signatures', schema=None) as batch_op:
        batch_op.drop_constraint('uq_signatures_petition_id_paper_key', type_='unique')
    op.create_index(
        'uq_signatures_petition_id_paper_key',
        'signatures',
        ['petition_id', 'paper_key'],
        unique=True,
        postgresql_where=_PAPER,
        sqlite_where=_PAPER,
    )


def downgrade() -> None:
    op.drop_index('uq_signatures_petition_id_paper_key', table_name='signatures')
    with op.batch_alter_table('signatures', schema=None) as batch_op:
        batch_op.create_unique_constraint(
            'uq_signatures_petition_id_paper_key', ['petition_id', 'paper_key']
        )
