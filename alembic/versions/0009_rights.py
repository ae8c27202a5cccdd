"""supporters' rights: audit log, last contact for retention, keyed address hashes

`audit_log` is append-only: triggers refuse UPDATE and DELETE on both databases.
`supporters.last_contact_at` (a lower bound of the last signature, click or gift) drives
the retention pass through its index; it starts at the latest signature (or the row's
creation). A partial index finds the few restricted supporters. Suppressions' address
hashes become keyed (HMAC with the secret key): those whose supporter still has an address
are re-hashed here.

Revision ID: 0009_rights
Revises: 0008_gift_attribution
Create Date: 2026-12-08 10:00:00
"""

from alembic import op
import sqlalchemy as sa

import engine.store.types


revision = "0009_rights"
down_revision = "0008_gift_attribution"
branch_labels = None
depends_on = None

_REFUSE = "audit_log is append-only"


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", engine.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("supporter_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_supporter", "audit_log", ["supporter_id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{_REFUSE}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                f"BEGIN SELECT RAISE(ABORT, '{_REFUSE}'); END"
            )
    with op.batch_alter_table("supporters", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "last_contact_at", engine.store.types.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.create_index("ix_supporters_last_contact_at", ["last_contact_at"], unique=False)
        batch_op.create_index(
            "ix_supporters_restricted",
            ["id"],
            unique=False,
            postgresql_where=sa.text("restricted_at IS NOT NULL"),
            sqlite_where=sa.text("restricted_at IS NOT NULL"),
        )
    op.execute(
        "UPDATE supporters SET last_contact_at = COALESCE((SELECT max(s.signed_at) FROM"
        " signatures s WHERE s.supporter_id = supporters.id), created_at)"
        " WHERE erased_at IS NULL"
    )
    _rehash_suppressions()


def _rehash_suppressions() -> None:
    """Suppressions of supporters who still have an address get the keyed hash."""
    from engine.config import get_settings
    from engine.rules.supporters import email_hash

    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT s.id, p.email FROM suppressions s JOIN supporters p ON p.id = s.supporter_id"
            " WHERE p.email IS NOT NULL"
        )
    ).all()
    if rows:
        secret = get_settings().secret_key
        bind.execute(
            sa.text("UPDATE suppressions SET email_hash = :digest WHERE id = :row_id"),
            [{"digest": email_hash(email, secret), "row_id": row_id} for row_id, email in rows],
        )


def downgrade() -> None:
    with op.batch_alter_table("supporters", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_supporters_restricted",
            postgresql_where=sa.text("restricted_at IS NOT NULL"),
            sqlite_where=sa.text("restricted_at IS NOT NULL"),
        )
        batch_op.drop_index("ix_supporters_last_contact_at")
        batch_op.drop_column("last_contact_at")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION audit_log_append_only()")
    op.drop_index("ix_audit_log_supporter", table_name="audit_log")
    op.drop_table("audit_log")
