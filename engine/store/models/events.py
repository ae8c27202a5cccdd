"""The append-only log of facts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.models.base import Base
from engine.store.types import BigId


class Event(Base):
    """Append-only log of facts; `source_key` de-duplicates replays from any source."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_supporter", "supporter_id", "occurred_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(60))
    source_key: Mapped[str] = mapped_column(String(200), unique=True)
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    supporter_id: Mapped[int | None] = mapped_column(
        ForeignKey("supporters.id", ondelete="SET NULL")
    )
    petition_id: Mapped[int | None] = mapped_column(ForeignKey("petitions.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
