"""How far each journey version's `signed:` or `milestone:` trigger has read its petition.

Reading every signature of the petition at every pass, and probing the enrolments for each,
cost a pass O(all signatures). A pass now reads only the signatures ranked above the
version's cursor (`seq`, the signature's rank, through the (petition_id, seq) key), enrols
whom its trigger selects among them (skipping the enrolled), and moves the cursor over
those that are settled:

- recorded more than `MARGIN` before `now`. A rank that commits after a higher one would
  never be read once the cursor passed it. Ranks are taken under the petition's row lock
  today (store/signatures.py), so they commit in order; the margin keeps the cursor safe
  with any way of signing whose transactions commit within half of it after taking their
  `now` (two API processes, the signature queue's group commits): a signature ranked below
  a settled one took its `now` before that one was ranked, so it committed before `now`.
  Until then, every signature above the cursor is read at every pass;
- and, for a `signed:` trigger, signed by `now`. In virtual time (`tick --now` before the
  signing) a signature dated later is not selected yet, and must still be at a later pass.

The cursor stops below the first signature that is not settled. A journey version starts
with no cursor, so a new journey or a new version (whose trigger may differ) reads every
signature once, as every pass did before. The new position is found before the enrolment
statement runs, so that on PostgreSQL (a snapshot per statement) the cursor never passes a
signature that the enrolment did not see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from engine.store.models import EnrolCursor, Signature

# Twice as long as any signing transaction takes from taking its `now` to committing.
MARGIN = timedelta(minutes=5)


@dataclass(frozen=True)
class Cursor:
    """One pass's read of a petition's signatures for one journey version: those ranked
    above `after` are read; the cursor then moves to `upto`."""

    version_id: int
    after: int
    upto: int

    @classmethod
    def open(
        cls,
        session: Session,
        version_id: int,
        petition_id: int,
        *,
        now: datetime,
        not_yet: ColumnElement[bool],
    ) -> Cursor:
        """The version's cursor, and how far this pass may move it: below the first
        signature above it that is recorded within the margin or that the trigger may
        select later (`not_yet`). Index range seeks on (petition_id, seq)."""
        stored = session.scalar(
            select(EnrolCursor.seq).where(EnrolCursor.journey_version_id == version_id)
        )
        after = stored or 0
        ranked = (Signature.petition_id == petition_id, Signature.seq > after)
        unsettled = session.scalar(
            select(func.min(Signature.seq)).where(
                *ranked, or_(Signature.recorded_at >= now - MARGIN, not_yet)
            )
        )
        if unsettled is not None:
            return cls(version_id, after, unsettled - 1)
        last = session.scalar(select(func.max(Signature.seq)).where(*ranked))
        return cls(version_id, after, after if last is None else last)

    def close(self, session: Session) -> None:
        """Store the new position (never backwards: a pass in another process may have
        moved it further meanwhile)."""
        if self.upto <= self.after:
            return
        connection = session.connection()
        insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
        statement = insert(EnrolCursor).values(journey_version_id=self.version_id, seq=self.upto)
        further = statement.excluded.seq > EnrolCursor.seq
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=["journey_version_id"],
                set_={"seq": statement.excluded.seq},
                where=further,
            )
        )
