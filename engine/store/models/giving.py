"""Gifts, one-off and monthly, with the email each is attributed to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.models.base import Base
from engine.store.types import BigId


class Donation(Base):
    __tablename__ = "donations"
    __table_args__ = (
        Index("ix_donations_supporter", "supporter_id", "donated_at"),
        Index("ix_donations_message", "message_id"),
        Index("ix_donations_subscription", "subscription_id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    supporter_id: Mapped[int | None] = mapped_column(
        ForeignKey("supporters.id", ondelete="SET NULL")
    )
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    donated_at: Mapped[datetime]
    # one-off | monthly
    frequency: Mapped[str] = mapped_column(String(10))
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    # The platform's id of the monthly gift (its mandate) this payment is of, if it says:
    # ending it ends that gift's payments only, not the giver's other monthly gifts.
    subscription_id: Mapped[str | None] = mapped_column(String(100))
    recorded_at: Mapped[datetime]
    # The email that led to the gift, and how it was found: `reference` (the payment
    # platform handed back the link's reference) or `last_click`. NULL: unattributed.
    message_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("outbox.id", ondelete="SET NULL")
    )
    attributed_by: Mapped[str | None] = mapped_column(String(20))
    # A refund or a cancelled monthly gift dates the change and keeps the row.
    refunded_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
