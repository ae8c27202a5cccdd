"""The frequency cap is shared across journeys, and SQL picks the planner's A/B variants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.rules.campaigns import CampaignDef
from engine.rules.journeys import SendStep
from engine.rules.plan import pick_variant
from engine.store import journeys, petitions
from engine.store.models import Enrolment, OutboxMessage
from engine.store.passes import tick
from tests.store.journey_helpers import (
    PETITION,
    declare,
    outbox_of,
    seed_campaign,
    sent_by,
    sign,
    supporter_id,
)

NOW = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)
CAP = {"max": 1, "per": "48h"}
CAMPAIGN = {
    "campaign": "c",
    "petition": {
        "slug": "p",
        "title": "P",
        "consents": {
            "updates": {"version": "v1", "wording": "w"},
            "fundraising": {"version": "v1", "wording": "w"},
        },
    },
    "journeys": [
        {
            "id": "appeal",
            "trigger": {"signed": "p"},
            "frequency_cap": CAP,
            "steps": [{"id": "ask", "send": {"template": "ask", "consent": "updates"}}],
        },
        {
            "id": "news",
            "trigger": {"signed": "p"},
            "frequency_cap": CAP,
            "steps": [
                {
                    "id": "hello",
                    "send": {
                        "consent": "updates",
                        "variants": [
                            {"name": "A", "template": "hello-a", "weight": 1},
                            {"name": "B", "template": "hello-b", "weight": 2},
                        ],
                    },
                }
            ],
        },
    ],
}


def setup(session: Session, people: list[str]) -> CampaignDef:
    campaign = CampaignDef.model_validate(CAMPAIGN)
    petition = petitions.upsert(session, campaign.petition, now=NOW)
    journeys.sync_journeys(session, [campaign], NOW)
    sign(session, petition.id, NOW, {name: (True, True) for name in people})
    return campaign


def test_a_second_journey_email_within_48_hours_is_deferred(session: Session) -> None:
    setup(session, ["alice"])

    tick(session, now=NOW, segments={})

    rows = session.execute(
        select(OutboxMessage.journey_id, OutboxMessage.due_at, OutboxMessage.reason)
        .where(OutboxMessage.supporter_id == supporter_id(session, "alice"))
        .order_by(OutboxMessage.journey_id)
    ).all()
    assert [tuple(r) for r in rows] == [
        ("appeal", NOW, None),
        ("news", NOW + timedelta(hours=48), "frequency-cap"),
    ]


def test_sql_picks_the_same_variant_as_the_planner(session: Session) -> None:
    campaign = setup(session, [f"p{i}" for i in range(60)])
    step = next(s for s in (campaign.journeys[1]["steps"]) if s["id"] == "hello")
    spec = SendStep.model_validate(step)

    tick(session, now=NOW, segments={})

    rows = session.execute(
        select(Enrolment.id, OutboxMessage.template, OutboxMessage.variant, Enrolment.variant)
        .join(OutboxMessage, OutboxMessage.enrolment_id == Enrolment.id)
        .where(OutboxMessage.step_id == "hello")
    ).all()
    assert len(rows) == 60
    for enrolment_id, template, variant, remembered in rows:
        assert (template, variant) == pick_variant(spec.send, seed=enrolment_id, step_id="hello")
        assert remembered == variant
    assert {v for _, _, v, _ in rows} == {"A", "B"}


def test_an_email_dropped_under_the_cap_does_not_hold_back_the_next_step(
    session: Session,
) -> None:
    # Given a journey capped at one email per 48 h: an update, then an ask that Bob, who
    # gave no consent to fundraising, will not get, then a day's wait.
    campaign, _ = declare(
        {
            "id": "capped",
            "trigger": {"signed": PETITION},
            "frequency_cap": CAP,
            "steps": [
                {"id": "update", "send": {"template": "update", "consent": "updates"}},
                {"id": "ask", "send": {"template": "ask-first", "consent": "fundraising"}},
                {"id": "pause", "wait": "1d"},
                {"id": "news", "send": {"template": "update", "consent": "updates"}},
            ],
        }
    )
    petition_id = seed_campaign(session, campaign, NOW - timedelta(days=1))
    sign(session, petition_id, NOW, {"bob": (True, False)})
    tick(session, now=NOW, segments={})
    sent_by(session, NOW)

    # When the ask comes up an hour after the update went out, within the cap.
    later = NOW + timedelta(hours=1)
    tick(session, now=later, segments={})

    # Then the ask is dropped, not deferred, and the wait counts from now (the planner's
    # answer), not from when the cap would have let the ask go.
    assert outbox_of(session, "bob") == [
        ("update", "sent", None),
        ("ask", "suppressed", "no-consent:fundraising"),
    ]
    row = session.execute(
        select(Enrolment.step_id, Enrolment.step_at, Enrolment.due_at).where(
            Enrolment.supporter_id == supporter_id(session, "bob")
        )
    ).one()
    assert tuple(row) == ("pause", later, later + timedelta(days=1))
