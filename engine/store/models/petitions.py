"""Petitions, their signatures (confirmed or waiting for double opt-in) and milestones."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.models.base import Base
from engine.store.types import BigId


class Petition(Base):
    __tablename__ = "petitions"
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    # Exact count, bumped in the same statement batch that inserts signatures.
    signature_count: Mapped[int] = mapped_column(Integer, default=0)
    # purpose -> {"version": ..., "wording": ...}: what the signer ticked, as declared.
    consent_wordings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    # Double opt-in (engine/store/confirmations.py), as declared.
    double_opt_in: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    count_unconfirmed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Signature(Base):
    """One signature; `seq` is its rank in the petition (the 140,000th has seq 140000)."""

    __tablename__ = "signatures"
    __table_args__ = (
        UniqueConstraint("petition_id", "supporter_id"),
        UniqueConstraint("petition_id", "seq"),
        # Partial: emailed signatures (all but a few) have no paper key, and a NULL entry
        # per signature was a fifth of the index work of an import.
        Index(
            "uq_signatures_petition_id_paper_key",
            "petition_id",
            "paper_key",
            unique=True,
            postgresql_where=text("paper_key IS NOT NULL"),
            sqlite_where=text("paper_key IS NOT NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    petition_id: Mapped[int] = mapped_column(Integer)  # no foreign keys: see Consent
    # NULL for paper signatures (no email): they count but receive nothing.
    supporter_id: Mapped[int | None] = mapped_column(Integer)
    # Content hash of a paper row, so that re-importing a sheet changes nothing.
    paper_key: Mapped[str | None] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    signed_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(20))
    # Imported signers enter journeys only when the import says so (`--enrol`).
    enrol: Mapped[bool] = mapped_column(Boolean, default=True)


class SignatureDay(Base):
    """A petition's signatures signed on one UTC day (paper ones too): what a funnel's
    signatures per day read, one row a day whatever the number of signatures. Added to by
    the statements that record signatures, in their transaction (engine/store/signatures.py);
    signatures are never deleted, so a row only grows. `mobilise stats --rebuild` counts
    them again from `signatures`."""

    __tablename__ = "signature_days"
    # No foreign key: written beside `signatures`, which has none (see Consent).
    petition_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    signatures: Mapped[int] = mapped_column(Integer)


class PendingSignature(Base):
    """A web signature of a double opt-in petition waiting for its address to be confirmed
    (engine/store/confirmations.py). Its consents are granted, and its signature recorded
    (or, with `count_unconfirmed`, enrolled), only when it is confirmed; the retention pass
    deletes it at `expires_at`, with the supporter it made if they have nothing else."""

    __tablename__ = "pending_signatures"
    __table_args__ = (
        UniqueConstraint("petition_id", "supporter_id"),
        Index("ix_pending_signatures_expires_at", "expires_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id"))
    supporter_id: Mapped[int] = mapped_column(ForeignKey("supporters.id", ondelete="CASCADE"))
    # purpose -> granted, as the form answered: recorded as consents on confirmation.
    consents: Mapped[dict[str, Any]] = mapped_column(default=dict)
    requested_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]


class Milestone(Base):
    __tablename__ = "milestones"
    __table_args__ = (UniqueConstraint("petition_id", "threshold"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id"))
    threshold: Mapped[int] = mapped_column(Integer)
    reached_at: Mapped[datetime | None]
    signature_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("signatures.id"))
