"""Segments in SQL agree with the pure evaluation, supporter by supporter.

Given supporters with varied places, gifts, consents and clicks, when every declared segment
(and a few extra conditions) is evaluated both ways, then the two memberships are equal.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.rules.conditions import Condition
from engine.rules.segments import SegmentDef
from engine.store import donations, segments
from engine.store.donations import DonationRow
from engine.store.models import Click, Consent, OutboxMessage, Supporter
from engine.store.passes import tick
from tests.store.journey_helpers import seed, sign, supporter_id
from tests.store.supporter_facts import sql_and_python_disagree

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
EXTRA = {
    "not-bretagne": {"not": {"region": ["Bretagne"]}},
    "small-gifts": {"last_gift": {"max": 20}},
    "signed-in-may": {
        "signed": {
            "petition": "stop-reconnaissance-faciale",
            "after": "2026-05-01",
            "before": "2026-06-01",
        }
    },
    "either": {"any": [{"monthly_donor": True}, {"departement": ["35", "75"]}]},
    "paris-or-none": {"locale": ["fr"]},
}


def populate(session: Session) -> dict[str, Condition]:
    declared, petition_id = seed(session, NOW - timedelta(days=30))
    signed = NOW - timedelta(days=20)
    sign(
        session,
        petition_id,
        signed,
        {"anne": (True, True), "bert": (False, True)},
        postal_code="35000",
    )
    sign(
        session,
        petition_id,
        signed,
        {"cleo": (True, False), "dora": (False, False)},
        postal_code="75011",
    )
    sign(session, petition_id, signed, {"eric": (True, True)}, postal_code="13001")
    donations.record(
        session,
        [
            DonationRow("anne@example.org", 12000, "EUR", NOW - timedelta(days=5), "one-off", "a"),
            DonationRow("bert@example.org", 1500, "EUR", NOW - timedelta(days=50), "monthly", "b"),
            DonationRow("cleo@example.org", 5000, "EUR", NOW + timedelta(days=5), "one-off", "c"),
        ],
        now=NOW,
    )
    # Anne withdraws the updates consent: the latest row is in force.
    session.add(
        Consent(
            supporter_id=supporter_id(session, "anne"),
            purpose="updates",
            granted=False,
            wording_version="v1",
            source="test",
            recorded_at=NOW - timedelta(days=1),
        )
    )
    tick(session, now=signed, segments=declared.conditions)
    for name, days in (("anne", 3), ("eric", 40)):
        message = session.scalar(
            select(OutboxMessage.id).where(
                OutboxMessage.supporter_id == supporter_id(session, name)
            )
        )
        assert message is not None
        session.add(
            Click(
                message_id=message,
                link_position=1,
                supporter_id=supporter_id(session, name),
                clicked_at=NOW - timedelta(days=days),
            )
        )
    session.flush()
    named = dict(declared.conditions)
    for name, where in EXTRA.items():
        named[name] = SegmentDef.model_validate({"segment": name, "where": where}).where
    return named


def test_every_segment_selects_the_same_people_in_sql_and_in_python(session: Session) -> None:
    named = populate(session)
    people = session.scalars(select(Supporter.id).order_by(Supporter.id)).all()

    assert sql_and_python_disagree(session, named, people, now=NOW) == {}


@pytest.mark.parametrize(
    ("name", "size"),
    [("donors", 2), ("non-donors", 3), ("grands-donateurs", 1), ("ile-de-france", 2)],
)
def test_segment_sizes_count_in_one_statement(session: Session, name: str, size: int) -> None:
    named = populate(session)

    assert segments.size(session, named[name], now=NOW, segments=named) == size
