"""A journey's figures per declared segment, on SQLite and PostgreSQL: the segments select
their people in SQL as the journeys do, and each segment's row sums what the journey's
emails to them produced, as the pure rules and a recount by hand say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import declarations
from engine.rules.conditions import holds
from engine.stats import export, report
from engine.store import counts
from engine.store.models import Click, Donation, OutboxMessage
from engine.store.step_figures import StepFigures
from tests.factories import sent_email, unique
from tests.store import engagement
from tests.store.journey_helpers import declare, seed_campaign, sign, supporter_id
from tests.store.supporter_facts import facts_for
from tests.store.test_stats_report import ab_journey

T0 = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)
NOW = T0 + timedelta(days=2)


def sent(session: Session, journey_id: str, step: str, name: str) -> int:
    """An email of the journey's step, sent to that signer, counted as the dispatcher counts."""
    who = supporter_id(session, name)
    message_id = sent_email(session, who, step, T0, template="thanked", journey_id=journey_id)
    counts.refresh(session, [message_id])
    return message_id


def by_hand(session: Session, journey_id: str, people: set[int]) -> StepFigures:
    """The journey's sent emails to `people`, summed from the tables one email at a time."""
    total = StepFigures()
    emails = session.execute(
        select(OutboxMessage.id, OutboxMessage.supporter_id).where(
            OutboxMessage.journey_id == journey_id, OutboxMessage.status == "sent"
        )
    ).all()
    for message_id, who in emails:
        if who not in people:
            continue
        clicks = session.scalar(
            select(func.count()).where(Click.message_id == message_id, Click.automated.is_(False))
        )
        gifts = session.execute(
            select(Donation.amount_cents, Donation.frequency).where(
                Donation.message_id == message_id, Donation.refunded_at.is_(None)
            )
        ).all()
        total = total + StepFigures(
            sent=1,
            clickers=int(bool(clicks)),
            clicks=clicks or 0,
            donors=int(bool(gifts)),
            gifts=len(gifts),
            one_off_cents=sum(c for c, f in gifts if f == "one-off"),
            monthly_cents=sum(c for c, f in gifts if f == "monthly"),
        )
    return total


def test_each_segment_gets_the_figures_of_the_journeys_emails_to_its_people(
    session: Session, project_dir: Path
) -> None:
    # Given a journey whose emails went to signers in Brittany and in Paris
    journey_id = unique("j")
    campaign, _ = declare(ab_journey(journey_id))
    petition_id = seed_campaign(session, campaign, T0 - timedelta(days=2))
    sign(
        session, petition_id, T0, {"anne": (True, True), "yann": (True, False)}, postal_code="29200"
    )
    sign(session, petition_id, T0, {"paul": (True, True), "zoe": (False, False)})
    emails = {
        (name, step): sent(session, journey_id, step, name)
        for name in ("anne", "yann", "paul", "zoe")
        for step in ("thanks", "news")
    }
    # And clicks (one a scanner's) and gifts: Anne gave 150 € after the news, Paul 20 €
    # after the thank-you then 10 € a month, Zoé's gift was refunded
    engagement.click(session, emails["anne", "news"], T0 + timedelta(hours=1))
    engagement.click(session, emails["yann", "thanks"], T0 + timedelta(hours=1))
    engagement.click(session, emails["paul", "news"], T0 + timedelta(hours=1), automated=True)
    engagement.click(session, emails["paul", "thanks"], T0 + timedelta(hours=2))
    engagement.gift(session, emails["anne", "news"], T0 + timedelta(hours=2), cents=15000)
    engagement.gift(session, emails["paul", "thanks"], T0 + timedelta(hours=3), cents=2000)
    engagement.gift(
        session, emails["paul", "news"], T0 + timedelta(hours=4), cents=1000, frequency="monthly"
    )
    refunded = engagement.gift(session, emails["zoe", "news"], T0 + timedelta(hours=5))
    engagement.refund(session, refunded, T0 + timedelta(days=1))
    declared = declarations.read_segments(project_dir / "segments")
    named = declared.conditions

    # When its figures are read per segment
    found = report.by_segment(session, journey_id, declared.segments, now=NOW)

    # Then there is one row per declared segment, in name order
    assert [s.segment for s in found.segments] == sorted(declared.segments)
    rows = {s.segment: s.line.figures for s in found.segments}
    # And each sums the journey's emails to the people the pure rules put in the segment
    everyone = {supporter_id(session, n) for n in ("anne", "yann", "paul", "zoe")}
    for name, segment in declared.segments.items():
        people = {
            p for p in everyone if holds(segment.where, facts_for(session, p, now=NOW), now=NOW,
                                         segments=named)
        }  # fmt: skip
        assert rows[name] == by_hand(session, journey_id, people), name
    # And the figures say what a fundraiser expects of these people
    assert (rows["donors"].sent, rows["donors"].donors, rows["donors"].one_off_cents) == (
        4,
        3,
        17000,
    )
    assert rows["donors"].monthly_cents == 1000
    assert rows["non-donors"].sent == 4  # Yann, and Zoé whose gift was refunded
    assert rows["grands-donateurs"].sent == 2  # Anne: her last gift was 150 €
    assert (rows["ile-de-france"].sent, rows["ile-de-france"].clickers) == (4, 1)
    assert rows["bretagne-engages"].sent == 4  # both clicked lately; Yann consents to news
    # And the export carries the same numbers, rates included
    payload = export.segments_json(found)
    (donors,) = [s for s in payload["segments"] if s["segment"] == "donors"]
    assert (donors["sent"], donors["donors"], donors["conversion_rate"]) == (4, 3, 0.75)
    assert export.segments_csv([found]).splitlines()[0].startswith("journey,segment,sent,")
