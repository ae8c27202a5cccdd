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
from tests.store.journey_helpers import sign, supporter_id

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
