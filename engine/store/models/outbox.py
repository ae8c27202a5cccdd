"""The outbox: one row per email, queued by the advance pass, then written by dispatch
and provider events."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.models.base import Base
from engine.store.types import BigId


class OutboxMessage(Base):
    """One email per enrolment and step: the UNIQUE pair is the idempotency key."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("enrolment_id", "step_id"),
        # The dispatcher claims due rows by status; the frequency cap reads recent emails
        # by due time. Per-supporter reads go through enrolments (unique key above).
        Index("ix_outbox_status_due", "status", "due_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign keys on this table, on purpose: rows are only ever written by the advance
    # pass from existing enrolments, and on PostgreSQL the three per-row RI triggers cost
    # more than the insert itself (measured: 60% of a million-row advance).
    enrolment_id: Mapped[int] = mapped_column(BigId)
    step_id: Mapped[str] = mapped_column(String(60))
    supporter_id: Mapped[int] = mapped_column(Integer)
    journey_id: Mapped[str] = mapped_column(String(100))
    journey_version_id: Mapped[int] = mapped_column(Integer)
    template: Mapped[str] = mapped_column(String(100))
    variant: Mapped[str | None] = mapped_column(String(20))
    transactional: Mapped[bool] = mapped_column(Boolean)
    # queued | held | sending | sent | suppressed | failed
    status: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(String(80))
    due_at: Mapped[datetime]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    # --- dispatch: written by engine/send, never by the advance pass
    # The template version (content hash) rendered: clicks resolve against its links.
    template_version: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A claim is a lease: a worker that dies mid-batch leaves rows a later pass can see.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None]
    provider_id: Mapped[str | None] = mapped_column(String(100))
    # Latest provider event applied (processed, delivered, bounce, ...) and its time, so
    # that late or repeated webhook events never move a message backwards.
    delivery: Mapped[str | None] = mapped_column(String(20))
    delivery_at: Mapped[datetime | None]
