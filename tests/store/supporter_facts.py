"""One supporter's facts read from the database for the pure planner.

The passes never evaluate conditions in Python: they compile them to SQL. The tests read
a supporter's facts with this to hold the SQL and the pure evaluation of every condition
(and the store's passes and the planner) to the same answer.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.rules.conditions import Facts, Gift
from engine.store import outbox, suppressions
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
