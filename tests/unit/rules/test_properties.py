"""Invariants over random journeys and event sequences (Hypothesis).

Given any acyclic journey and any history, when passes run at increasing instants, then:
no step is taken twice, the goal always wins, progress never goes back, and a pass
repeated at the same instant changes nothing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.rules.conditions import Facts, Gift
from engine.rules.journeys import Journey
from engine.rules.plan import Action, Advance, EnrolmentState, Plan, Wait, plan

T0 = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)
SEGMENTS: dict[str, Any] = {}


def changes(found: Plan) -> list[Action]:
    """Everything but the final Wait: empty when the pass changes nothing."""
    return [a for a in found.actions if not isinstance(a, Wait)]


@st.composite
def journeys(draw: st.DrawFn) -> Journey:
    """Steps only lead forward (or to exit), so every drawn journey is a valid DAG."""
    count = draw(st.integers(1, 7))
    ids = [f"s{i}" for i in range(count)]
    steps: list[dict[str, Any]] = []
    for i, step_id in enumerate(ids):
        later = [*ids[i + 1 :], "exit"]
        kind = draw(st.sampled_from(["send", "send", "wait", "until", "branch", "exit"]))
        step: dict[str, Any] = {"id": step_id}
        if kind == "send":
            step["send"] = draw(
                st.sampled_from(
                    [
                        {"template": "t", "transactional": True},
                        {"template": "t", "consent": "updates"},
                        {
                            "variants": [
                                {"name": "A", "template": "a"},
                                {"name": "B", "template": "b"},
                            ],
                            "consent": "updates",
                        },
                    ]
                )
            )
        elif kind == "wait":
            step["wait"] = draw(st.sampled_from(["30m", "1d", "3d"]))
        elif kind == "until":
            step["wait_until"] = {
                "milestone": 10,
                "timeout": draw(st.sampled_from(["1d", "10d"])),
                "on_timeout": draw(st.sampled_from(["next", "exit", *later[:-1]])),
            }
        elif kind == "branch":
            step["branch"] = {
                "cases": [{"if": {"donor": True}, "goto": draw(st.sampled_from(later))}],
                "else": draw(st.sampled_from(later)),
            }
        else:
            step["exit"] = "done"
        if kind in ("send", "wait", "until") and draw(st.booleans()):
            step["next"] = draw(st.sampled_from(later))
        steps.append(step)
    goal = draw(st.sampled_from([None, {"donated_since_entry": True}]))
    return Journey.model_validate(
        {
            "id": "j",
            "trigger": {"signed": "p"},
            "steps": steps,
            "goal": goal,
            "frequency_cap": draw(st.sampled_from([None, {"max": 1, "per": "48h"}])),
            "quiet_hours": draw(st.sampled_from([None, {"start": "21:00", "end": "08:00"}])),
        }
    )


hours = st.integers(0, 24 * 40).map(lambda h: T0 + timedelta(hours=h))


@st.composite
def histories(draw: st.DrawFn) -> tuple[Facts, list[datetime]]:
    gifts = tuple(Gift(1000, at) for at in draw(st.lists(hours, max_size=2)))
    milestone = draw(st.none() | hours)
    facts = Facts(
        consents=frozenset(draw(st.sampled_from([[], ["updates"]]))),
        gifts=gifts,
        milestones={} if milestone is None else {("p", 10): milestone},
        signatures=(("p", T0),),
    )
    passes = sorted(draw(st.lists(hours, min_size=1, max_size=12)))
    return facts, passes


def at(facts: Facts, now: datetime) -> Facts:
    """Facts as known at `now`: later gifts and milestones have not happened yet."""
    return replace(
        facts,
        gifts=tuple(g for g in facts.gifts if g.donated_at <= now),
        milestones={k: v for k, v in facts.milestones.items() if v <= now},
    )


@settings(max_examples=300, deadline=None)
@given(journey=journeys(), history=histories())
def test_invariants_hold_for_any_journey_and_history(
    journey: Journey, history: tuple[Facts, list[datetime]]
) -> None:
    facts, passes = history
    order = {s.id: i for i, s in enumerate(journey.steps)}
    state: EnrolmentState | None = None
    sent: list[str] = []
    entered: list[str] = []
    sends: tuple[datetime, ...] = ()
    position = -1
    for now in passes:
        known = replace(at(facts, now), campaign_sends=sends)
        result = plan(
            journey,
            state,
            known,
            now,
            petition="p",
            segments=SEGMENTS,
            enrol_as=7 if state is None else None,
        )
        state = result.state
        assert state is not None
        sends += tuple(s.due_at for s in result.sends if not s.transactional)
        sent += [s.step_id for s in result.sends]
        entered += [a.to_step for a in result.actions if isinstance(a, Advance)]

        # Never twice the same step.
        assert len(sent) == len(set(sent))
        assert len(entered) == len(set(entered))
        # The goal always wins: once given after entry, the supporter is out and gets nothing.
        if journey.goal is not None and any(state.entered_at <= g.donated_at for g in known.gifts):
            assert state.status == "exited"
            assert result.sends == []
        # Progress is monotonic: forward in the step list, and exits are final.
        if state.status == "active":
            assert state.step_id is not None
            assert order[state.step_id] >= position
            position = order[state.step_id]
        else:
            position = len(order)
        # A pass repeated at the same instant changes nothing.
        again = plan(
            journey,
            state,
            replace(known, campaign_sends=sends),
            now,
            petition="p",
            segments=SEGMENTS,
        )
        assert changes(again) == []
        assert again.state == state
