"""Shards: how a journeys pass splits its supporters among several transactions.

A pass on several connections (engine/periodic.py) gives each transaction one `Shard`, a
range of supporter ids; `shards` cuts the ids in use into that many ranges, and `EVERYONE`
is the shard of a pass on one connection.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, select, true
from sqlalchemy.orm import Session

from engine.store.models import Enrolment, Supporter


@dataclass(frozen=True)
class Shard:
    """The supporters one transaction of a split pass advances: ids from `low` to `high`.

    By supporter, not by enrolment: everything the advance reads across rows (the frequency
    cap's other emails, goals, suppressions) is one supporter's, so shards never need to see
    each other's uncommitted work. By range, not by `id % n`: enrolments are created in
    signing order, so a range of supporters is mostly a range of table and index pages, and
    two shards do not fight over the same pages."""

    low: int | None = None
    high: int | None = None

    def where(self) -> ColumnElement[bool]:
        test: ColumnElement[bool] = true()
        if self.low is not None:
            test = and_(test, Enrolment.supporter_id >= self.low)
        if self.high is not None:
            test = and_(test, Enrolment.supporter_id <= self.high)
        return test


def shards(session: Session, count: int) -> list[Shard]:
    """`count` shards covering every supporter id, split evenly over the ids in use (the
    supporters' primary key: two index seeks)."""
    low = session.scalar(select(func.min(Supporter.id)))
    high = session.scalar(select(func.max(Supporter.id)))
    if count <= 1 or low is None or high is None:
        return [Shard()]
    size = max(1, -(-(high - low + 1) // count))
    bounds = [low + size * i for i in range(1, count) if low + size * i <= high]
    lows: list[int | None] = [None, *bounds]
    highs: list[int | None] = [b - 1 for b in bounds] + [None]
    return [Shard(lo, hi) for lo, hi in zip(lows, highs, strict=True)]


EVERYONE = Shard()
