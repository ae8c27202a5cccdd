"""Differential test: the set-based store and the pure planner take the same decisions.

Given random histories of one seed-journey supporter (consents, one-off or monthly gifts, an
unsubscribe, a week-long block, the milestone) and random pass instants, when both the store's
`tick` and `plan` run at each instant, then they queue the same emails (step, template, status,
reason, due time) and leave the enrolment in the same place. A second tick at the same instant
changes nothing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.declarations import Declared
from engine.rules.plan import EnrolmentState, plan
from engine.store import donations, milestones
from engine.store.donations import DonationRow
from engine.store.models import Consent, Enrolment, OutboxMessage, Suppression
from engine.store.passes import tick
from tests.store.journey_helpers import SLUG, seed, sent_by, sign, supporter_id
from tests.store.supporter_facts import facts_for

T0 = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)
hours = st.integers(0, 24 * 45).map(lambda h: T0 + timedelta(hours=h, minutes=7 * (h % 3)))


@st.composite
def histories(draw: st.DrawFn) -> dict[str, object]:
    return {
        "updates": draw(st.booleans()),
        "fundraising": draw(st.booleans()),
        "gave_before": draw(st.sampled_from([None, "one-off", "monthly"])),
        "gift": draw(st.none() | hours),
        "milestone": draw(st.none() | hours),
        "unsubscribe": draw(st.none() | hours),
        "block": draw(st.none() | hours),
        "withdraw_updates": draw(st.none() | hours),
        "passes": sorted(set(draw(st.lists(hours, min_size=1, max_size=8)))),
    }


def run(session: Session, declared: Declared, petition_id: int, case: dict[str, object]) -> None:
    sign(session, petition_id, T0, {"zoe": (bool(case["updates"]), bool(case["fundraising"]))})
    sid = supporter_id(session, "zoe")
    gifts = []
    if case["gave_before"] in ("one-off", "monthly"):
        kind: Literal["one-off", "monthly"] = (
            "monthly" if case["gave_before"] == "monthly" else "one-off"
        )
        gifts.append(
            DonationRow("zoe@example.org", 2000, "EUR", T0 - timedelta(days=30), kind, "before")
        )
    if isinstance(case["gift"], datetime):
        gifts.append(DonationRow("zoe@example.org", 1500, "EUR", case["gift"], "one-off", "gift"))
    donations.record(session, gifts, now=T0)
    if isinstance(case["milestone"], datetime):
        milestones.check(session, petition_id=petition_id, count=140000, now=case["milestone"])
    named = declared.conditions
    journey = declared.journeys[0][1]
    state: EnrolmentState | None = None
    waiting: datetime | None = None  # the due time of the planner's email still to send
    expected: list[tuple[object, ...]] = []
    applied: set[str] = set()
    passes = case["passes"]
    assert isinstance(passes, list)
    for now in [T0, *passes]:
        # Facts that the database keeps without a time filter arrive when they happen.
        if (
            "unsub" not in applied
            and isinstance(case["unsubscribe"], datetime)
            and case["unsubscribe"] <= now
        ):
            session.add(
                Suppression(
                    supporter_id=sid,
                    email_hash="0" * 64,
                    reason="unsubscribe",
                    created_at=case["unsubscribe"],
                )
            )
            applied.add("unsub")
        if "block" not in applied and isinstance(case["block"], datetime) and case["block"] <= now:
            session.add(
                Suppression(
                    supporter_id=sid,
                    email_hash="0" * 64,
                    reason="blocked",
                    created_at=case["block"],
                    expires_at=case["block"] + timedelta(days=7),
                )
            )
            applied.add("block")
        if (
            "withdraw" not in applied
            and isinstance(case["withdraw_updates"], datetime)
            and case["withdraw_updates"] <= now
        ):
            session.add(
                Consent(
                    supporter_id=sid,
                    purpose="updates",
                    granted=False,
                    wording_version="v1",
                    source="t",
                    recorded_at=case["withdraw_updates"],
                )
            )
            applied.add("withdraw")
        session.flush()
        # A dispatcher on time sent what was due, in the database and in the planner's state.
        sent_by(session, now)
        if state is not None and state.pending and waiting is not None and waiting <= now:
            state = replace(state, pending=False, last_sent_at=waiting)
        facts = facts_for(session, sid, now=now)
        tick(session, now=now, segments=named)
        enrolment_id = session.scalar(select(Enrolment.id).where(Enrolment.supporter_id == sid))
        assert enrolment_id is not None
        result = plan(
            journey,
            state,
            facts,
            now,
            petition=SLUG,
            segments=named,
            zone="Europe/Paris",
            enrol_as=enrolment_id if state is None else None,
        )
        state = result.state
        queued = [s.due_at for s in result.sends if s.status == "queued"]
        waiting = queued[-1] if queued else waiting
        expected += [
            (s.step_id, s.template, s.status == "queued", s.reason, s.due_at) for s in result.sends
        ]

        stored = session.execute(
            select(
                OutboxMessage.step_id,
                OutboxMessage.template,
                OutboxMessage.status.in_(("queued", "sent")),
                OutboxMessage.reason,
                OutboxMessage.due_at,
            )
            .where(OutboxMessage.supporter_id == sid)
            .order_by(OutboxMessage.id)
        ).all()
        assert [tuple(r) for r in stored] == expected, now
        row = session.execute(
            select(
                Enrolment.state, Enrolment.step_id, Enrolment.exit_reason, Enrolment.due_at
            ).where(Enrolment.id == enrolment_id)
        ).one()
        assert state is not None
        assert tuple(row) == (state.status, state.step_id, state.exit_reason, state.due_at), now
        assert tick(session, now=now, segments=named).changed == 0


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=histories())
def test_the_store_takes_the_planners_decisions(session: Session, case: dict[str, object]) -> None:
    savepoint = session.begin_nested()
    try:
        declared, petition_id = seed(session, T0 - timedelta(days=1))
        run(session, declared, petition_id, case)
    finally:
        savepoint.rollback()
