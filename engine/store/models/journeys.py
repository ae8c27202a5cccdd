"""Journeys: the stored versions of each definition, the supporters' walks through them,
and how far each trigger has read its petition."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.models.base import Base
from engine.store.types import BigId


class JourneyVersion(Base):
    """One stored definition of a journey; `sync` adds a version when the content hash moves."""

    __tablename__ = "journey_versions"
    __table_args__ = (
        UniqueConstraint("journey_id", "version"),
        UniqueConstraint("journey_id", "content_hash"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    journey_id: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    campaign: Mapped[str] = mapped_column(String(100))
    petition_slug: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]]
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class Enrolment(Base):
    """A supporter's walk through one journey version; `entry` counts re-entries."""

    __tablename__ = "enrolments"
    __table_args__ = (
        # Supporter first: the same index serves re-entry checks and per-supporter lookups,
        # one index fewer to maintain on every advance (PostgreSQL updates them all).
        UniqueConstraint("supporter_id", "journey_id", "entry"),
        # The advance pass reads "active rows of this version at this step, due by now".
        Index("ix_enrolments_due", "journey_version_id", "state", "step_id", "due_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    journey_id: Mapped[str] = mapped_column(String(100))
    journey_version_id: Mapped[int] = mapped_column(ForeignKey("journey_versions.id"))
    supporter_id: Mapped[int] = mapped_column(ForeignKey("supporters.id", ondelete="CASCADE"))
    entry: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(10))
    step_id: Mapped[str | None] = mapped_column(String(60))
    step_at: Mapped[datetime]
    due_at: Mapped[datetime | None]
    entered_at: Mapped[datetime]
    exited_at: Mapped[datetime | None]
    exit_reason: Mapped[str | None] = mapped_column(String(40))
    variant: Mapped[str | None] = mapped_column(String(20))


class EnrolCursor(Base):
    """How far a journey version's `signed:` or `milestone:` trigger has read its petition's
    signatures (engine/store/cursors.py): every signature ranked up to `seq` is settled, so
    each pass reads only the signatures ranked above it, through (petition_id, seq)."""

    __tablename__ = "enrol_cursors"
    # By version: a new version (its trigger may differ) starts over, as a new journey does.
    journey_version_id: Mapped[int] = mapped_column(
        ForeignKey("journey_versions.id"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer)
