"""The periodic pass: enrol, then advance until nothing moves. Takes `now`; never commits.

Running it twice at the same `now` changes nothing: enrolment skips the enrolled, every
transition moves rows off the step it read them from, and the outbox key is UNIQUE.

The advance may be split by supporter (`Shard`) over several transactions that the caller
runs at once: PostgreSQL runs one statement on one core, and a million-row advance is
all writes, which it does not parallelise by itself (engine/periodic.py, bench/README.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from engine.rules.conditions import Condition
from engine.store import enrolling, enrolments, journeys
from engine.store.db import BULK, refresh_statistics
from engine.store.enrolments import BATCH, Summary
from engine.store.shards import EVERYONE, Shard


def _roomy(session: Session) -> None:
    if session.get_bind().dialect.name == "sqlite":
        # 2 MB of page cache by default: a pass over a million enrolments thrashes it. This
        # bounds it at 128 MB for the pooled connection (peak memory stays well under 500 MB).
        session.connection().exec_driver_sql("PRAGMA cache_size = -131072")


def enrol(session: Session, *, now: datetime, segments: Mapping[str, Condition]) -> Summary:
    """The pass's first half: every current journey's trigger, once."""
    _roomy(session)
    summary = Summary()
    for loaded in journeys.current(session):
        enrolled = enrolling.enrol(session, loaded, now=now, named=segments)
        summary.count(summary.enrolled, loaded.journey.id, enrolled)
    if sum(summary.enrolled.values()) > BULK:
        refresh_statistics(session, "enrolments")
    return summary


def advance(
    session: Session,
    *,
    now: datetime,
    segments: Mapping[str, Condition],
    batch: int = BATCH,
    shard: Shard = EVERYONE,
) -> Summary:
    """The pass's second half, for the supporters of `shard`: advance until nothing moves."""
    _roomy(session)
    summary = Summary()
    running = journeys.running(session)
    # Each round moves everyone due by at least one step; a journey is a DAG, so the
    # longest journey bounds the rounds. The extra round proves the fixed point.
    rounds = max((len(j.journey.steps) for j in running), default=0) + 1
    for _ in range(rounds):
        changed = sum(
            enrolments.advance(
                session,
                loaded,
                now=now,
                named=segments,
                summary=summary,
                batch=batch,
                shard=shard,
            )
            for loaded in running
        )
        if not changed:
            break
    return summary


def tick(
    session: Session,
    *,
    now: datetime,
    segments: Mapping[str, Condition],
    batch: int = BATCH,
) -> Summary:
    """One deterministic pass of the journey engine at `now` (aware datetime), in the
    caller's one transaction."""
    summary = enrol(session, now=now, segments=segments)
    summary.add(advance(session, now=now, segments=segments, batch=batch))
    return summary
