"""One supporter's facts read from the database for the pure planner.

The passes never evaluate conditions in Python: they compile them to SQL. The tests read
a supporter's facts with this to hold the SQL and the pure evaluation of every condition
(and the store's passes and the planner) to the same answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.rules.conditions import Condition, Facts, Gift, holds
from engine.store import outbox, segments, suppressions
from engine.store.models import (
    Click,
    Consent,
    Donation,
    Event,
    Milestone,
    OutboxMessage,
    Petition,
    Signature,
    Supporter,
    Suppression,
)


def facts_for(session: Session, supporter_id: int, *, now: datetime) -> Facts:
    person = session.get(Supporter, supporter_id)
    assert person is not None
    granted: dict[str, bool] = {}
    for purpose, value in session.execute(
        select(Consent.purpose, Consent.granted)
        .where(Consent.supporter_id == supporter_id)
        .order_by(Consent.id)
    ):
        granted[purpose] = value  # append-only: the last row wins
    signatures = session.execute(
        select(Petition.slug, Signature.signed_at)
        .join(Petition, Petition.id == Signature.petition_id)
        .where(Signature.supporter_id == supporter_id)
    ).all()
    # In the order of engine.store.donations.latest: the last one is the last gift.
    gifts = session.execute(
        select(
            Donation.amount_cents,
            Donation.donated_at,
            Donation.frequency,
            Donation.refunded_at,
            Donation.cancelled_at,
        )
        .where(Donation.supporter_id == supporter_id)
        .order_by(Donation.donated_at, Donation.id)
    ).all()
    clicks = session.execute(
        select(OutboxMessage.step_id, Click.clicked_at)
        .join(OutboxMessage, OutboxMessage.id == Click.message_id)
        .where(Click.supporter_id == supporter_id, Click.automated.is_(False))
    ).all()
    events = session.execute(
        select(Event.kind, Event.occurred_at).where(Event.supporter_id == supporter_id)
    ).all()
    milestones = session.execute(
        select(Petition.slug, Milestone.threshold, Milestone.reached_at)
        .join(Petition, Petition.id == Milestone.petition_id)
        .where(Milestone.reached_at.is_not(None))
    ).all()
    sends = session.scalars(
        select(OutboxMessage.due_at).where(
            outbox.of_supporter(supporter_id),
            OutboxMessage.transactional.is_(False),
            OutboxMessage.status.not_in(outbox.DROPPED),
        )
    ).all()
    suppressed = suppressions.reasons_in_force(
        session, Suppression.supporter_id == supporter_id, now=now
    ).get(supporter_id)
    return Facts(
        region=person.region,
        departement=person.departement,
        locale=person.locale,
        consents=frozenset(p for p, ok in granted.items() if ok),
        unsubscribed=suppressed == suppressions.OPTED_OUT,
        blocked=suppressed == suppressions.BLOCKED,
        restricted=person.restricted_at is not None,
        signatures=tuple((slug, at) for slug, at in signatures),
        gifts=tuple(Gift(c, at, f == "monthly", r, x) for c, at, f, r, x in gifts),
        clicks=tuple((step, at) for step, at in clicks),
        events=tuple((kind, at) for kind, at in events),
        milestones={(slug, t): at for slug, t, at in milestones if at is not None and at <= now},
        campaign_sends=tuple(sends),
    )


def sql_and_python_disagree(
    session: Session, named: Mapping[str, Condition], people: Sequence[int], *, now: datetime
) -> dict[str, tuple[set[int], set[int]]]:
    """Each condition whose SQL (store/segments) selects others among `people` than its
    pure evaluation on their facts does: name -> (selected in SQL, selected in Python)."""
    facts = {sid: facts_for(session, sid, now=now) for sid in people}
    found = {}
    for name, condition in named.items():
        ctx = segments.Context(supporter_id=Supporter.id, now=now, segments=named)
        in_sql = set(session.scalars(select(Supporter.id).where(segments.where(condition, ctx))))
        in_sql &= set(people)
        in_python = {sid for sid in people if holds(condition, facts[sid], now=now, segments=named)}
        if in_sql != in_python:
            found[name] = (in_sql, in_python)
    return found
