"""The advance pass's two less travelled paths, on SQLite and PostgreSQL.

Given people waiting at a step, when the pass works in id windows smaller than the
table, then it does what one window does; and when someone is put back on a send step
they already passed, then the pass queues nothing twice and still moves them on (on
PostgreSQL this is the fallback from the plain INSERT to the skipping one).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.rules.campaigns import CampaignDef
from engine.store import journeys
from engine.store.models import Enrolment, OutboxMessage
from engine.store.passes import tick
from tests.store.journey_helpers import enrolment_of, outbox_of, seed, sent_by, sign

SIGNED = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)  # a Wednesday, 11:30 in Paris
TIMED_OUT = SIGNED + timedelta(days=31)  # the wait for 140,000 is over: the update is due
PEOPLE = {name: (True, True) for name in ("alice", "bob", "carol", "dave", "erin")}


def states(session: Session) -> list[tuple[int, str, str | None]]:
    return [
        (e.supporter_id, e.state, e.step_id)
        for e in session.scalars(select(Enrolment).order_by(Enrolment.supporter_id))
    ]


def queued(session: Session) -> list[tuple[int, str, str]]:
    rows = session.execute(
        select(OutboxMessage.supporter_id, OutboxMessage.step_id, OutboxMessage.status).order_by(
            OutboxMessage.supporter_id, OutboxMessage.step_id
        )
    ).all()
    return [(s, step, status) for s, step, status in rows]


def run_in_windows(session: Session, batch: int) -> tuple[Any, ...]:
    declared, petition_id = seed(session, SIGNED - timedelta(days=1))
    sign(session, petition_id, SIGNED, PEOPLE)
    first = tick(session, now=SIGNED, segments=declared.conditions, batch=batch)
    sent_by(session, SIGNED)
    second = tick(session, now=TIMED_OUT, segments=declared.conditions, batch=batch)
    again = tick(session, now=TIMED_OUT, segments=declared.conditions, batch=batch)
    ids = session.scalars(select(Enrolment.supporter_id)).all()
    base = min(ids)
    # Supporter ids differ between runs (sequences are not rolled back): compare offsets.
    return (
        first.queued,
        second.queued,
        second.moved,
        again.changed,
        [(s - base, state, step) for s, state, step in states(session)],
        [(s - base, step, status) for s, step, status in queued(session)],
    )


def test_windows_smaller_than_the_table_do_what_one_window_does(session: Session) -> None:
    in_one = run_in_windows(session, batch=1_000_000)
    session.rollback()

    in_twos = run_in_windows(session, batch=2)

    assert in_twos == in_one
    first_queued, second_queued, second_moved, again_changed, walked, _ = in_twos
    assert first_queued == {("stop-reconnaissance-faciale", "thanked"): 5}
    assert second_queued == {("stop-reconnaissance-faciale", "update"): 5}
    assert second_moved == 10  # the wait to the update, the update to the pause
    assert again_changed == 0
    assert {step for _, _, step in walked} == {"pause"}


def back_to_update(campaign: CampaignDef) -> CampaignDef:
    """A new version without the pause, whose waiters go back to the update step."""
    raw = campaign.model_dump(mode="json")
    journey = raw["journeys"][0]
    journey["steps"] = [s for s in journey["steps"] if s["id"] != "pause"]
    journey["migrate"] = {"pause": "update"}
    return CampaignDef.model_validate(raw)


def test_someone_put_back_on_a_step_they_passed_is_not_sent_it_twice(session: Session) -> None:
    declared, petition_id = seed(session, SIGNED - timedelta(days=1))
    sign(session, petition_id, SIGNED, {"alice": (True, True), "bob": (True, True)})
    tick(session, now=SIGNED, segments=declared.conditions)
    sent_by(session, SIGNED)
    tick(session, now=TIMED_OUT, segments=declared.conditions)
    assert enrolment_of(session, "alice") == ("active", "pause", None)
    later = TIMED_OUT + timedelta(hours=1)
    [migrated] = journeys.sync_journeys(session, [back_to_update(declared.campaigns[0])], later)
    assert migrated.migrated == 2

    summary = tick(session, now=later, segments=declared.conditions)

    assert summary.queued.get(("stop-reconnaissance-faciale", "update"), 0) == 0
    for name in ("alice", "bob"):
        updates = [row for row in outbox_of(session, name) if row[0] == "update"]
        assert len(updates) == 1
        assert enrolment_of(session, name)[1] != "update"


def test_a_branch_reached_from_a_wait_is_passed_in_the_same_write(session: Session) -> None:
    # Given five signers waiting at the pause after their update was sent
    declared, petition_id = seed(session, SIGNED - timedelta(days=1))
    sign(session, petition_id, SIGNED, PEOPLE)
    tick(session, now=SIGNED, segments=declared.conditions)
    sent_by(session, SIGNED)
    tick(session, now=TIMED_OUT, segments=declared.conditions)
    sent_by(session, TIMED_OUT)
    assert {enrolment_of(session, name)[1] for name in PEOPLE} == {"pause"}

    # When the pause is over: the ask branch sends them on to the first-gift ask
    summary = tick(
        session, now=TIMED_OUT + timedelta(days=3, hours=1), segments=declared.conditions
    )

    # Then each enrolment row was written once on the way (pause → ask-first, the branch
    # decided in the same statement), then left the journey once its ask was queued
    assert summary.queued == {("stop-reconnaissance-faciale", "ask-first"): 5}
    assert summary.moved == 5
    assert summary.exited == {"completed": 5}
    assert {enrolment_of(session, name)[:2] for name in PEOPLE} == {("exited", "ask-first")}
