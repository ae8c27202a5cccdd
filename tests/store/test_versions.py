"""Journey versions: a changed definition is a new version; enrolled people keep theirs;
removing a step someone is on is refused unless a mapping moves them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import Invalid
from engine.rules.campaigns import CampaignDef
from engine.store import journeys
from engine.store.models import Enrolment, JourneyVersion
from engine.store.passes import tick
from tests.store.journey_helpers import seed, sign

NOW = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)


def edited(campaign: CampaignDef, change: Any) -> CampaignDef:
    raw = campaign.model_dump(mode="json")
    change(raw["journeys"][0])
    return CampaignDef.model_validate(raw)


def versions(session: Session) -> list[int]:
    return list(session.scalars(select(JourneyVersion.version).order_by(JourneyVersion.version)))


def test_an_unchanged_definition_stores_no_new_version(session: Session) -> None:
    declared, _ = seed(session, NOW)

    results = journeys.sync_journeys(session, declared.campaigns, NOW + timedelta(hours=1))

    assert [r.created for r in results] == [False]
    assert versions(session) == [1]


def test_enrolled_supporters_stay_on_their_version(session: Session) -> None:
    declared, petition_id = seed(session, NOW)
    sign(session, petition_id, NOW, {"alice": (True, True)})
    tick(session, now=NOW, segments=declared.conditions)
    retitled = edited(declared.campaigns[0], lambda j: j.update(title="Nouveau titre"))

    journeys.sync_journeys(session, [retitled], NOW + timedelta(hours=1))
    sign(session, petition_id, NOW + timedelta(hours=2), {"bob": (True, True)})
    tick(session, now=NOW + timedelta(hours=2), segments=declared.conditions)

    assert versions(session) == [1, 2]
    on = dict(
        session.execute(
            select(Enrolment.supporter_id, JourneyVersion.version).join(
                JourneyVersion, JourneyVersion.id == Enrolment.journey_version_id
            )
        ).all()
    )
    assert sorted(on.values()) == [1, 2]


def remove_wait(journey: dict[str, Any]) -> None:
    journey["steps"] = [s for s in journey["steps"] if s["id"] != "until-140000"]


def test_removing_the_step_people_wait_on_is_refused(session: Session) -> None:
    declared, petition_id = seed(session, NOW)
    sign(session, petition_id, NOW, {"alice": (True, True)})
    tick(session, now=NOW, segments=declared.conditions)

    with pytest.raises(Invalid) as refused:
        journeys.sync_journeys(session, [edited(declared.campaigns[0], remove_wait)], NOW)

    assert "1 supporter(s) are on step 'until-140000' of version 1" in refused.value.message
    assert refused.value.hint is not None
    assert "migrate" in refused.value.hint


def test_a_declared_mapping_moves_them_to_the_new_version(session: Session) -> None:
    declared, petition_id = seed(session, NOW)
    sign(session, petition_id, NOW, {"alice": (True, True)})
    tick(session, now=NOW, segments=declared.conditions)

    def change(journey: dict[str, Any]) -> None:
        remove_wait(journey)
        journey["migrate"] = {"until-140000": "update"}

    later = NOW + timedelta(days=1)
    [result] = journeys.sync_journeys(session, [edited(declared.campaigns[0], change)], later)

    assert result.migrated == 1
    row = session.execute(select(Enrolment.step_id, Enrolment.journey_version_id)).one()
    assert row.step_id == "update"
    assert session.get(JourneyVersion, row.journey_version_id).version == 2  # type: ignore[union-attr]
