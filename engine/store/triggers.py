"""Who a journey's trigger selects at `now`: a subquery of (supporter_id, triggered_at).

Signed and milestone triggers read signatures (only rows recorded with `enrol`); donated
and clicked triggers read gifts and clicks since the journey first existed; a segment
trigger reads the segment's SQL. `enrolments.enrol` applies the re-entry policy on top.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Select, func, literal, select
from sqlalchemy.sql.selectable import Subquery

from engine.rules.conditions import Condition
from engine.rules.journeys import (
    ClickedTrigger,
    DonatedTrigger,
    MilestoneTrigger,
    SegmentTrigger,
    SignedTrigger,
)
from engine.store import segments
from engine.store.journeys import Loaded
from engine.store.models import (
    Click,
    Donation,
    Enrolment,
    JourneyVersion,
    Milestone,
    OutboxMessage,
    Petition,
    Signature,
    Supporter,
)


def candidates(loaded: Loaded, *, now: datetime, named: Mapping[str, Condition]) -> Subquery:
    """(supporter_id, triggered_at) for everyone the trigger selects at `now`."""
    trigger = loaded.journey.trigger
    if isinstance(trigger, SignedTrigger | MilestoneTrigger):
        slug = trigger.signed if isinstance(trigger, SignedTrigger) else trigger.milestone.petition
        # Only signers an import or a form enrolled (`enrol`) enter; paper rows have no id.
        query: Select[int | None, datetime | None] = (
            select(Signature.supporter_id, Signature.signed_at)
            .join(Petition, Petition.id == Signature.petition_id)
            .where(
                Petition.slug == slug,
                Signature.enrol.is_(True),
                Signature.supporter_id.is_not(None),
                Signature.signed_at <= now,
            )
        )
        if isinstance(trigger, MilestoneTrigger):
            query = (
                select(Signature.supporter_id, Milestone.reached_at)
                .join(Petition, Petition.id == Signature.petition_id)
                .join(Milestone, Milestone.petition_id == Petition.id)
                .where(
                    Petition.slug == slug,
                    Signature.enrol.is_(True),
                    Signature.supporter_id.is_not(None),
                    Milestone.threshold == trigger.milestone.threshold,
                    Milestone.reached_at <= now,
                )
            )
        return query.subquery()
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
                Donation.donated_at <= now,
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
