"""Milestones: the thresholds of a petition's count, marked reached once, each announced.

A threshold is reached when the count reaches it; its row then holds when, and the
signature that reached it (ranked `seq` equal to the threshold). Each is announced once as
a `milestone.reached` event, which milestone triggers and waits read. Signature batches
check them in the same round trip as the count (engine/store/signatures.py); `check`
marks them for a count given (a sync, the simulator).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import TextClause
from sqlalchemy.orm import Session

from engine.store import events
from engine.store.pipeline import sql


def reaching(count: str) -> TextClause:
    """The UPDATE that marks the petition's (`:pid`) thresholds up to `count` (an SQL
    expression) reached at `:now`, returning each one's threshold and signature."""
    return sql(
        "UPDATE milestones SET reached_at = :now, signature_id = (SELECT s.id FROM signatures s"
        " WHERE s.petition_id = milestones.petition_id AND s.seq = milestones.threshold) "
        f"WHERE petition_id = :pid AND reached_at IS NULL AND threshold <= {count} "
        "RETURNING threshold, signature_id"
    )


_REACH = reaching(":count")


def check(session: Session, *, petition_id: int, count: int, now: datetime) -> list[int]:
    """Mark every threshold the count has reached, once; emit `milestone.reached`."""
    reached = (
        session.connection().execute(_REACH, {"pid": petition_id, "count": count, "now": now}).all()
    )
    return announce(session, petition_id, [tuple(r) for r in reached], now)


def announce(
    session: Session, petition_id: int, reached: Sequence[tuple[Any, ...]], now: datetime
) -> list[int]:
    """Emit `milestone.reached` for each (threshold, signature id) just marked; returns the
    thresholds, in order."""
    for threshold, signature_id in reached:
        events.append(
            session,
            kind="milestone.reached",
            source_key=f"milestone:{petition_id}:{threshold}",
            occurred_at=now,
            petition_id=petition_id,
            payload={"threshold": threshold, "signature_id": signature_id},
        )
    return sorted(t for t, _ in reached)
