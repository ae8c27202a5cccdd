"""Who a journey's trigger selects at `now`: a subquery of (supporter_id, triggered_at).

Signed and milestone triggers read signatures (only rows recorded with `enrol`), those
ranked above the version's cursor (engine/store/cursors.py); donated and clicked triggers
read gifts and clicks since the journey first existed; a segment trigger reads the
segment's SQL. `enrolling.enrol` applies the re-entry policy on top.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import ColumnElement, false, func, literal, select
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.selectable import Subquery

from engine.rules.conditions import Condition
from engine.rules.journeys import (
    ClickedTrigger,
    DonatedTrigger,
    MilestoneTrigger,
    SegmentTrigger,
    SignedTrigger,
    Trigger,
)
from engine.store import donations, segments
from engine.store.journeys import Loaded
from engine.store.models import (
    Click,
    Donation,
    Enrolment,
    JourneyVersion,
    Milestone,
    OutboxMessage,
    Signature,
    Supporter,
)


def petition_of(trigger: Trigger) -> str | None:
    """The petition whose signatures a signed or milestone trigger reads; None for others."""
    if isinstance(trigger, SignedTrigger):
        return trigger.signed
    if isinstance(trigger, MilestoneTrigger):
        return trigger.milestone.petition
    return None


def reached(
    session: Session, trigger: MilestoneTrigger, petition_id: int, now: datetime
) -> datetime | None:
    """When the trigger's milestone was reached, if it was by `now`."""
    when = session.scalar(
        select(Milestone.reached_at).where(
            Milestone.petition_id == petition_id,
            Milestone.threshold == trigger.milestone.threshold,
        )
    )
    return when if when is not None and when <= now else None


def not_yet(trigger: Trigger, now: datetime) -> ColumnElement[bool]:
    """Signatures the trigger does not select at `now` but may at a later pass: a signed
    trigger's signatures dated after `now` (virtual time). A milestone reached selects
    every signer, whenever they signed."""
    return Signature.signed_at > now if isinstance(trigger, SignedTrigger) else false()


def signers(
    petition_id: int,
    *,
    after: int,
    now: datetime,
    reached_at: datetime | None,
    supporter_id: int | None = None,
) -> Subquery:
    """(supporter_id, triggered_at) for the petition's signers ranked above `after` (an
    index range on (petition_id, seq)), or for one signer (`supporter_id`: the
    (petition_id, supporter_id) key): entering when they signed, by `now`, or, for a
    milestone trigger, when the milestone was reached (`reached_at`)."""
    triggered: ColumnElement[datetime] | InstrumentedAttribute[datetime] = (
        Signature.signed_at
        if reached_at is None
        else literal(reached_at, Enrolment.entered_at.type)
    )
    query = select(Signature.supporter_id, triggered).where(
        Signature.petition_id == petition_id,
        Signature.seq > after,
        # Only signers an import or a form enrolled (`enrol`) enter; paper rows have no id.
        Signature.enrol.is_(True),
        Signature.supporter_id.is_not(None),
    )
    if supporter_id is not None:
        query = query.where(Signature.supporter_id == supporter_id)
    if reached_at is None:
        query = query.where(Signature.signed_at <= now)
    return query.subquery()


def candidates(loaded: Loaded, *, now: datetime, named: Mapping[str, Condition]) -> Subquery:
    """(supporter_id, triggered_at) for everyone a donated, clicked or segment trigger
    selects at `now` (signed and milestone triggers: `signers`)."""
    trigger = loaded.journey.trigger
    assert petition_of(trigger) is None
    first = (
        select(func.min(JourneyVersion.created_at))
        .where(JourneyVersion.journey_id == loaded.journey.id)
        .scalar_subquery()
    )
    if isinstance(trigger, DonatedTrigger):
        # Gifts from before the journey existed do not enrol anyone retroactively.
        return (
            select(Donation.supporter_id, func.max(Donation.donated_at))
            .where(
                Donation.supporter_id.is_not(None),
                Donation.donated_at >= first,
                donations.counts(Donation, now),
            )
            .group_by(Donation.supporter_id)
        ).subquery()
    if isinstance(trigger, ClickedTrigger):
        return (
            select(Click.supporter_id, func.max(Click.clicked_at))
            .join(OutboxMessage, OutboxMessage.id == Click.message_id)
            .where(
                OutboxMessage.journey_id == trigger.clicked.journey,
                OutboxMessage.step_id == trigger.clicked.step,
                Click.supporter_id.is_not(None),
                Click.automated.is_(False),
                Click.clicked_at >= first,
                Click.clicked_at <= now,
            )
            .group_by(Click.supporter_id)
        ).subquery()
    assert isinstance(trigger, SegmentTrigger)
    ctx = segments.Context(supporter_id=Supporter.id, now=now, segments=named)
    return (
        select(Supporter.id, literal(now, Enrolment.entered_at.type))
        .where(segments.where(named[trigger.entered_segment], ctx))
        .subquery()
    )
