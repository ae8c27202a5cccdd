"""After a bulk write, PostgreSQL plans the next statements with the rows just written.

Given a campaign's worth of signers (more than `BULK`), when the journey pass enrols them
and queues their thank-yous in one transaction, then the planner's statistics already count
those rows: with the empty tables' statistics, PostgreSQL planned the pass's next lookups as
nested loops over "one row", and the first pass at 140,000 signers took 641 s.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from engine.store.db import BULK
from engine.store.passes import tick
from tests.store.journey_helpers import seed, sign

SIGNED = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)


def estimated_rows(session: Session, table: str) -> float:
    found = session.scalar(text("SELECT reltuples FROM pg_class WHERE relname = :t"), {"t": table})
    return float(found or 0)


def test_a_pass_over_a_whole_campaign_plans_with_the_rows_it_wrote(session: Session) -> None:
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite's plans here do not depend on statistics
    declared, petition_id = seed(session, SIGNED - timedelta(days=1))
    sign(session, petition_id, SIGNED, {f"p{i}": (True, True) for i in range(BULK + 1)})

    tick(session, now=SIGNED, segments=declared.conditions)

    assert estimated_rows(session, "enrolments") > BULK
    assert estimated_rows(session, "outbox") > BULK
