"""Enrolment reads the signatures above each journey version's cursor, and loses none.

A `signed:` or `milestone:` trigger reads only the signatures ranked above the version's
cursor, which moves over the settled ones (engine/store/cursors.py): recorded more than a
margin ago, and signed by the pass's `now`. Given signatures that commit out of rank order
or are dated after the pass, when later passes run, then every signer is enrolled once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from engine.rules.campaigns import CampaignDef
from engine.store import journeys, petitions
from engine.store.models import EnrolCursor, Enrolment, JourneyVersion, Signature
from engine.store.passes import tick
from tests.store.journey_helpers import sign, supporter_id
from tests.store.test_triggers import campaign

T = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)
SIGNED = {"trigger": {"signed": "p"}}


def setup(session: Session, *journey_ids: str) -> int:
    """A petition without milestones and a journey entered by signing it, per id."""
    declared = campaign(SIGNED)
    declared = CampaignDef.model_validate(
        declared.model_dump()
        | {
            "petition": {"slug": "p", "title": "P"},
            "journeys": [{**declared.journeys[0], "id": j} for j in journey_ids or ("j",)],
        }
    )
    petition = petitions.upsert(session, declared.petition, now=T)
    journeys.sync_journeys(session, [declared], T - timedelta(days=1))
    return petition.id


def enrolled(session: Session) -> set[int]:
    return set(session.scalars(select(Enrolment.supporter_id)))


def ids(session: Session, *names: str) -> set[int]:
    return {supporter_id(session, name) for name in names}


def cursor(session: Session) -> int | None:
    return session.scalar(select(EnrolCursor.seq))


def test_a_signature_ranked_lower_that_commits_after_a_pass_is_still_enrolled(
    session: Session,
) -> None:
    """Given alice, bob and carol ranked 1, 2, 3 at T, and bob's transaction committing
    after a pass that saw carol's (two signing processes), when the passes run, then bob is
    enrolled: carol was recorded within the margin, so the cursor did not pass bob's rank."""
    petition_id = setup(session)
    sign(session, petition_id, T, {name: (True, True) for name in ("alice", "bob", "carol")})
    late = session.scalars(
        select(Signature).where(Signature.petition_id == petition_id, Signature.seq == 2)
    ).one()
    row = {c.key: getattr(late, c.key) for c in Signature.__table__.columns}
    session.expunge(late)
    session.execute(delete(Signature).where(Signature.id == row["id"]))

    tick(session, now=T + timedelta(minutes=1), segments={})
    assert enrolled(session) == ids(session, "alice", "carol")
    assert cursor(session) is None

    session.execute(insert(Signature).values(**row))  # bob's commit
    tick(session, now=T + timedelta(minutes=2), segments={})
    assert enrolled(session) == ids(session, "alice", "bob", "carol")

    # Once all three are older than the margin, the cursor moves over them.
    tick(session, now=T + timedelta(minutes=10), segments={})
    assert cursor(session) == 3


def test_a_signature_dated_after_the_pass_is_enrolled_at_a_later_pass(
    session: Session,
) -> None:
    """Given dave's signature dated tomorrow (virtual time: `tick --now` before it) and
    erin's ranked after it today, when a pass runs an hour later, then erin is enrolled
    and dave not yet; and a pass after dave's date enrols him."""
    petition_id = setup(session)
    sign(session, petition_id, T, {"dave": (True, True)}, signed_at=T + timedelta(days=1))
    sign(session, petition_id, T, {"erin": (True, True)})

    tick(session, now=T + timedelta(hours=1), segments={})
    assert enrolled(session) == ids(session, "erin")
    assert cursor(session) is None  # stopped below dave's rank

    tick(session, now=T + timedelta(days=1, hours=1), segments={})
    assert enrolled(session) == ids(session, "dave", "erin")
    assert cursor(session) == 2


def test_a_journey_added_later_enrols_everyone_who_signed_before(session: Session) -> None:
    """Given a journey whose cursor passed alice and bob, when a second journey on the same
    petition is synced, then its first pass enrols them too: each version has its own."""
    petition_id = setup(session)
    sign(session, petition_id, T, {"alice": (True, True), "bob": (True, True)})
    tick(session, now=T + timedelta(hours=1), segments={})
    assert cursor(session) == 2

    setup(session, "j", "k")
    summary = tick(session, now=T + timedelta(hours=3), segments={})

    assert summary.enrolled == {"k": 2}
    version = session.scalar(select(JourneyVersion.id).where(JourneyVersion.journey_id == "k"))
    assert session.get(EnrolCursor, version) is not None
