"""What readers do with an email: the tracked links of each template version, and the
clicks on them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.models.base import Base
from engine.store.types import BigId


class Link(Base):
    """The tracked URLs of one template version: a click redirects only to these."""

    __tablename__ = "links"
    __table_args__ = (UniqueConstraint("template", "version", "position"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    template: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(Text)


class Click(Base):
    __tablename__ = "clicks"
    __table_args__ = (
        Index("ix_clicks_supporter", "supporter_id", "clicked_at"),
        Index("ix_clicks_message", "message_id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(BigId, ForeignKey("outbox.id", ondelete="CASCADE"))
    link_position: Mapped[int] = mapped_column(Integer)
    supporter_id: Mapped[int | None] = mapped_column(
        ForeignKey("supporters.id", ondelete="SET NULL")
    )
    clicked_at: Mapped[datetime]
    # A prefetcher or security scanner (several links within seconds of delivery): kept,
    # left out of rates.
    automated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
