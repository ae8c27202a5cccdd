"""Staff access (API keys, dashboard sessions) and the audit log of who did what."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.models.base import Base
from engine.store.types import BigId


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    # SHA-256 of the key: the key itself is shown once and never stored.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Its first characters (engine/store/apikeys.PREFIX_LENGTH), not secret: they name the
    # key a refused one claims to be in the audit log. None for keys made before 0014.
    key_prefix: Mapped[str | None] = mapped_column(String(12), index=True)
    role: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class StaffSession(Base):
    """A dashboard sign-in: the cookie names it, signing out deletes it."""

    __tablename__ = "staff_sessions"
    # SHA-256 of the random session token the (signed) cookie carries.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]


class AuditEntry(Base):
    """Append-only: who did what to whom, when (rights exercised, sign-ins, key changes).

    Never updated or deleted: the store has no function for it, and triggers refuse it
    (migration 0009). The target is a supporter id, never an address."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_supporter", "supporter_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime]
    # `staff:<key id>` (dashboard), `apikey:<key id>` (API), `cli`, `supporter`, `retention`.
    actor: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(40))
    # No foreign key: the log outlives what it names.
    supporter_id: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
