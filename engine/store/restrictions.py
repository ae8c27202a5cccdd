"""Restriction of processing (GDPR art. 18): the data stays, nothing is done with it.

`restricted` is the one rule. The journey pass reads it (nobody restricted is enrolled,
no step is taken for them, so no email is queued: engine/store/enrolments.py) and the
dispatcher's last look reads it (an email queued before the restriction is dropped:
engine/store/recipients.py, engine/send/gate.py). Lifting the restriction lets the
journeys go on from where they stopped.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session, aliased

from engine.store import audit
from engine.store.models import Supporter


def restricted(supporter_id: Any) -> ColumnElement[bool]:
    """The supporter (a column or expression of supporter ids) is restricted.

    An IN over the restricted supporters, read from their partial index: they are few, so
    each statement reads the list once (SQLite: a temporary index, PostgreSQL: a hashed
    subplan) rather than probing `supporters` for every row it walks."""
    held = aliased(Supporter)
    ids = select(held.id).where(held.restricted_at.is_not(None))
    return supporter_id.in_(ids)  # type: ignore[no-any-return]


def restrict(
    session: Session, supporter_id: int, *, actor: str, now: datetime, lift: bool = False
) -> bool:
    """Restrict processing, or `lift` the restriction; logged. False when it changed nothing
    (restricted already: the first date is kept; or nothing to lift)."""
    done = session.execute(
        update(Supporter)
        .where(
            Supporter.id == supporter_id,
            Supporter.restricted_at.is_not(None) if lift else Supporter.restricted_at.is_(None),
        )
        .values(restricted_at=None if lift else now)
        .execution_options(synchronize_session=False)
    )
    changed = bool(done.rowcount)  # type: ignore[attr-defined]
    if changed:
        action = "lift-restriction" if lift else "restrict"
        audit.record(session, actor=actor, action=action, now=now, supporter_id=supporter_id)
    return changed
