"""The figures, kept exact as events arrive (engine/store/counts.py; what each one counts:
engine/store/step_figures.py)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.models.base import Base
from engine.store.types import BigId


class MessageCounts(Base):
    """What one email has produced so far besides being sent (delivered, clicks, gifts...):
    the share of it that `step_counts` holds, so that a change is added there once, as a
    difference. Written from an email's first such event on (engine/store/counts.py)."""

    __tablename__ = "message_counts"
    # No foreign key: written beside the outbox in the same statements' transactions, as
    # the outbox itself is (see OutboxMessage).
    message_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    journey_id: Mapped[str] = mapped_column(String(100))
    step_id: Mapped[str] = mapped_column(String(60))
    variant: Mapped[str] = mapped_column(String(20))  # '' without variants
    delivered: Mapped[int] = mapped_column(Integer)
    bounced: Mapped[int] = mapped_column(Integer)
    unsubscribed: Mapped[int] = mapped_column(Integer)
    clicks: Mapped[int] = mapped_column(Integer)
    gifts: Mapped[int] = mapped_column(Integer)
    one_off_cents: Mapped[int] = mapped_column(BigInteger)
    monthly_cents: Mapped[int] = mapped_column(BigInteger)


class StepCounts(Base):
    """The summary rows: per journey, step and variant, the sums over its emails of
    `message_counts` (clickers and donors: the emails with at least one click or gift).
    A funnel reads a few of these rows, whatever the number of events behind them."""

    __tablename__ = "step_counts"
    journey_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    step_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    variant: Mapped[str] = mapped_column(String(20), primary_key=True)  # '' without variants
    sent: Mapped[int] = mapped_column(BigInteger)
    delivered: Mapped[int] = mapped_column(BigInteger)
    bounced: Mapped[int] = mapped_column(BigInteger)
    unsubscribed: Mapped[int] = mapped_column(BigInteger)
    clickers: Mapped[int] = mapped_column(BigInteger)
    clicks: Mapped[int] = mapped_column(BigInteger)
    donors: Mapped[int] = mapped_column(BigInteger)
    gifts: Mapped[int] = mapped_column(BigInteger)
    one_off_cents: Mapped[int] = mapped_column(BigInteger)
    monthly_cents: Mapped[int] = mapped_column(BigInteger)
