"""key_prefix: the first characters of each API key, to name the key a refused one claims

A refused sign-in or API call goes to the audit log under the id of the key whose prefix
it carries (a mistyped or revoked key, or someone holding part of one), else as unknown.
The prefix (`mob_` and 8 characters, 48 bits) is not the key: the rest, 200 bits, is never
stored. Keys made before have none (their refusals are logged as unknown).

Revision ID: 0014_key_prefix
Revises: 0013_optin
Create Date: 2026-12-12 08:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = "0014_key_prefix"
down_revision = "0013_optin"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("key_prefix", sa.String(length=12), nullable=True))
        batch.create_index("ix_api_keys_key_prefix", ["key_prefix"])


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_index("ix_api_keys_key_prefix")
        batch.drop_column("key_prefix")
