"""Supporters: who we may email, with which consents, and whom we must not email."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.models.base import Base
from engine.store.types import BigId


def _created_at(context: Any) -> Any:
    return context.get_current_parameters()["created_at"]


class Supporter(Base):
    """A person we may email. Erasure blanks the personal columns and keeps the id."""

    __tablename__ = "supporters"
    __table_args__ = (
        # The retention pass reads the supporters whose last contact is older than a cut.
        Index("ix_supporters_last_contact_at", "last_contact_at"),
        # Few rows: every pass and dispatch reads the restricted ones (store/supporters.py).
        Index(
            "ix_supporters_restricted",
            "id",
            postgresql_where=text("restricted_at IS NOT NULL"),
            sqlite_where=text("restricted_at IS NOT NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    # Normalised (NFKC, trimmed, lower-cased); NULL once erased.
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    postal_code: Mapped[str | None] = mapped_column(String(10))
    departement: Mapped[str | None] = mapped_column(String(3))
    region: Mapped[str | None] = mapped_column(String(40))
    locale: Mapped[str] = mapped_column(String(10), default="fr")
    created_at: Mapped[datetime]
    restricted_at: Mapped[datetime | None]
    erased_at: Mapped[datetime | None]
    # A lower bound of the supporter's last own contact (a signature, a click, a gift): set
    # when the row is made, raised by the retention pass when it finds a later one, NULL
    # once anonymised (engine/store/retention.py).
    last_contact_at: Mapped[datetime | None] = mapped_column(default=_created_at)


class Consent(Base):
    """Append-only consent history: the latest row per (supporter, purpose) is in force."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_supporter_purpose", "supporter_id", "purpose", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign keys on the bulk-written tables (consents, signatures): only the set-based
    # pipeline in store/signatures.py writes them, from rows it has just joined, and on
    # PostgreSQL the per-row RI triggers cost as much as the inserts (measured: 0.7 s of a
    # 1.4 s 20,000-row batch).
    supporter_id: Mapped[int] = mapped_column(Integer)
    purpose: Mapped[str] = mapped_column(String(40))
    granted: Mapped[bool] = mapped_column(Boolean)
    wording_version: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(80))
    recorded_at: Mapped[datetime]


class Suppression(Base):
    """Do not email: for good (unsubscribes, hard bounces, complaints, erasure: the hash
    survives erasure) or until `expires_at` (blocks). engine.store.suppressions reads them."""

    __tablename__ = "suppressions"
    __table_args__ = (
        # Carries the expiry: "in force at now" is answered from the index.
        Index("ix_suppressions_supporter", "supporter_id", "expires_at"),
        Index("ix_suppressions_email_hash", "email_hash"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    supporter_id: Mapped[int | None] = mapped_column(
        ForeignKey("supporters.id", ondelete="SET NULL")
    )
    email_hash: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime]
    # NULL: for good. Otherwise the suppression stops applying at this instant.
    expires_at: Mapped[datetime | None]
