"""How a journeys pass splits its work: its supporters among transactions (shards), and
the enrolments among statements (id windows).

A pass on several connections (engine/periodic.py) gives each transaction one `Shard`, a
range of supporter ids; `shards` cuts the ids in use into that many ranges, and `EVERYONE`
is the shard of a pass on one connection. Within a transaction, each step's statements
walk the enrolments in windows of `BATCH` ids (`id_windows`).
"""

from __future__ import annotations

from collections.abc import Iterator
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


# Ids per statement: each window is one INSERT … SELECT and one UPDATE per step, walked
# along the primary key. Memory grows with it on SQLite: an UPDATE inside the pass's
# transaction keeps the original of every page it changes in a statement journal, in
# memory (temp_store), so a million-id window peaked at 516 MB against 309 MB for 250k
# windows, for the same CPU time (bench/README.md).
BATCH = 250_000


def id_windows(
    session: Session, acts_on: ColumnElement[bool], batch: int
) -> Iterator[ColumnElement[bool]]:
    """Bounded id windows over the rows `acts_on` selects (none when there are none)."""
    # Ordered by the due index's last key: PostgreSQL then walks that index. Unordered,
    # with statistics not yet refreshed after a pass moved everyone off a step, it took
    # the step for full and scanned the whole table for a row it expected at once (56 ms
    # a probe at 140,000 enrolments, seven probes a shard in every idle pass).
    if (
        session.scalar(select(Enrolment.id).where(acts_on).order_by(Enrolment.due_at).limit(1))
        is None
    ):
        return
    # The table's id range comes from the primary key in O(log n); the range of `acts_on`
    # itself would cost a scan of all its index entries.
    # (Two statements: SQLite only optimises a lone min() or max() into an index seek.)
    low = session.scalar(select(func.min(Enrolment.id)))
    high = session.scalar(select(func.max(Enrolment.id)))
    assert low is not None
    assert high is not None
    start = low
    while start <= high:
        yield Enrolment.id.between(start, start + batch - 1)
        start += batch
