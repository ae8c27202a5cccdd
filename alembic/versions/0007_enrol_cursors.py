"""enrol_cursors: how far each journey version's signature trigger has read

A `signed:` or `milestone:` trigger read every signature of its petition at each pass and
probed the enrolments for each. The pass now reads only the signatures ranked above the
version's cursor (the (petition_id, seq) key), and moves the cursor over those settled.

Revision ID: 0007_enrol_cursors
Revises: 0006_suppression_expiry
Create Date: 2026-12-03 10:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0007_enrol_cursors'
down_revision = '0006_suppression_expiry'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'enrol_cursors',
        sa.Column('journey_version_id', sa.Integer(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ['journey_version_id'],
            ['journey_versions.id'],
            name=op.f('fk_enrol_cursors_journey_version_id_journey_versions'),
        ),
        sa.PrimaryKeyConstraint('journey_version_id', name=op.f('pk_enrol_cursors')),
    )


def downgrade() -> None:
    op.drop_table('enrol_cursors')
