"""Triggers and re-entry: milestone, donated (with re-entry after exit), segment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.rules.campaigns import CampaignDef
from engine.rules.conditions import Donor
from engine.store import donations, journeys, milestones, petitions
from engine.store.donations import DonationRow
from engine.store.models import Enrolment, OutboxMessage
from engine.store.passes import tick
from tests.store.journey_helpers import sign

NOW = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)
RECEIPT = [{"id": "receipt", "send": {"template": "receipt", "transactional": True}}]


def campaign(journey: dict[str, Any]) -> CampaignDef:
    return CampaignDef.model_validate(
        {
            "campaign": "c",
            "petition": {"slug": "p", "title": "P", "milestones": [2]},
            "journeys": [{"id": "j", "steps": RECEIPT, **journey}],
        }
    )


def setup(session: Session, journey: dict[str, Any]) -> int:
    declared = campaign(journey)
    petition = petitions.upsert(session, declared.petition, now=NOW)
    journeys.sync_journeys(session, [declared], NOW - timedelta(days=1))
    return petition.id


def count(session: Session, model: type[Any]) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_a_milestone_trigger_enrols_signers_once_the_milestone_is_reached(
    session: Session,
) -> None:
    petition_id = setup(session, {"trigger": {"milestone": {"petition": "p", "threshold": 2}}})
    sign(session, petition_id, NOW, {"alice": (True, True)})
    tick(session, now=NOW, segments={})
    assert count(session, Enrolment) == 0

    sign(session, petition_id, NOW + timedelta(hours=1), {"bob": (True, True)})
    tick(session, now=NOW + timedelta(hours=1), segments={})

    assert count(session, Enrolment) == 2
    assert milestones.check(session, petition_id=petition_id, count=2, now=NOW) == []


def test_a_second_gift_re_enters_a_journey_with_reentry_after_exit(session: Session) -> None:
    petition_id = setup(session, {"trigger": {"donated": True}, "reentry": "after_exit"})
    sign(session, petition_id, NOW, {"alice": (True, True)})

    def give(ref: str, at: datetime) -> None:
        row = DonationRow("alice@example.org", 1000, "EUR", at, "one-off", ref)
        donations.record(session, [row], now=at)
        tick(session, now=at, segments={})
        tick(session, now=at, segments={})

    give("g1", NOW)
    give("g2", NOW + timedelta(days=10))

    entries = session.execute(select(Enrolment.entry, Enrolment.exit_reason)).all()
    assert sorted(tuple(e) for e in entries) == [(1, "completed"), (2, "completed")]
    assert count(session, OutboxMessage) == 2


def test_never_means_one_enrolment_whatever_the_gifts(session: Session) -> None:
    petition_id = setup(session, {"trigger": {"donated": True}})
    sign(session, petition_id, NOW, {"alice": (True, True)})
    for day, ref in ((0, "g1"), (10, "g2")):
        at = NOW + timedelta(days=day)
        donations.record(
            session, [DonationRow("alice@example.org", 1000, "EUR", at, "one-off", ref)], now=at
        )
        tick(session, now=at, segments={})

    assert count(session, Enrolment) == 1


def test_entering_a_segment_enrols_its_members(session: Session) -> None:
    petition_id = setup(session, {"trigger": {"entered_segment": "donors"}})
    sign(session, petition_id, NOW, {"alice": (True, True), "bob": (True, True)})
    donations.record(
        session, [DonationRow("bob@example.org", 1000, "EUR", NOW, "one-off", "b")], now=NOW
    )

    summary = tick(session, now=NOW, segments={"donors": Donor(donor=True)})

    assert summary.enrolled == {"j": 1}
