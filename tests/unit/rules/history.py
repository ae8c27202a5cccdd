"""Replaying a supporter's history through the planner, pass after pass.

A history file holds the journey (inline or a campaign file of the repository), the
segments, a supporter's events and the passes to run; each pass lists the plan expected.
Queued emails are sent at their due time, as a dispatcher on time sends them, unless the
history's `sent_at` names another moment for a step (`null`: still not sent).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from engine.rules.conditions import Condition, Facts, Gift
from engine.rules.journeys import Journey, SignedTrigger
from engine.rules.plan import Action, EnrolmentState, Plan, Send, plan
from engine.rules.segments import SegmentDef

ROOT = Path(__file__).resolve().parents[3]


def describe(action: Action) -> dict[str, object]:
    """A plain, JSON-ready description of an action, as the golden histories write it."""
    data: dict[str, object] = {"action": type(action).__name__.lower()}
    for key, value in action.__dict__.items():
        if isinstance(value, datetime):
            value = value.astimezone(UTC).isoformat()
        elif isinstance(value, tuple):
            value = list(value)
        if value is not None and key != "key":
            data[key] = value
    return data


@dataclass(frozen=True)
class Event:
    kind: str
    at: datetime
    data: dict[str, Any]


def load_journey(case: dict[str, Any]) -> tuple[Journey, str, str]:
    """(journey, petition slug, time zone)."""
    if "campaign_file" in case:
        raw = yaml.safe_load((ROOT / case["campaign_file"]).read_text())
        journey = Journey.model_validate(raw["journeys"][0])
        return journey, raw["petition"]["slug"], raw.get("timezone", "Europe/Paris")
    return (
        Journey.model_validate(case["journey"]),
        case["petition"],
        case.get("timezone", "Europe/Paris"),
    )


def load_segments(case: dict[str, Any]) -> dict[str, Condition]:
    if "segments" in case:
        return {k: SegmentDef(segment=k, where=v).where for k, v in case["segments"].items()}
    found = {}
    for path in sorted((ROOT / "segments").glob("*.yaml")):
        segment = SegmentDef.model_validate(yaml.safe_load(path.read_text()))
        found[segment.segment] = segment.where
    return found


def facts_at(events: list[Event], now: datetime, base: dict[str, Any]) -> Facts:
    """Everything known at `now`: events after it have not happened yet."""
    past = [e for e in events if e.at <= now]
    consents: set[str] = set(base.get("consents", []))
    for event in past:
        if event.kind == "consent":
            purpose = event.data["purpose"]
            (consents.add if event.data.get("granted", True) else consents.discard)(purpose)
    return Facts(
        region=base.get("region"),
        departement=base.get("departement"),
        consents=frozenset(consents),
        unsubscribed=any(e.kind == "unsubscribed" for e in past),
        blocked=any(
            e.kind == "blocked" and now < datetime.fromisoformat(e.data["until"]) for e in past
        ),
        signatures=tuple((e.data["petition"], e.at) for e in past if e.kind == "signed"),
        gifts=tuple(
            Gift(e.data["cents"], e.at, e.data.get("monthly", False))
            for e in past
            if e.kind == "donated"
        ),
        clicks=tuple((e.data["step"], e.at) for e in past if e.kind == "clicked"),
        events=tuple((e.data.get("name", e.kind), e.at) for e in past if e.kind == "event"),
        milestones={
            (e.data["petition"], e.data["threshold"]): e.at for e in past if e.kind == "milestone"
        },
    )


def triggered(journey: Journey, facts: Facts) -> bool:
    trigger = journey.trigger
    if isinstance(trigger, SignedTrigger):
        return any(slug == trigger.signed for slug, _ in facts.signatures)
    return False


def replay(case: dict[str, Any]) -> list[list[dict[str, object]]]:
    """The described plan of every pass, carrying the state (and the sends) across passes."""
    journey, petition, zone = load_journey(case)
    segments = load_segments(case)
    events = [Event(e["kind"], datetime.fromisoformat(e["at"]), e) for e in case["events"]]
    state: EnrolmentState | None = None
    sends: tuple[datetime, ...] = tuple(
        datetime.fromisoformat(s) for s in case.get("other_campaign_sends", [])
    )
    found = []
    sent_at = case.get("sent_at", {})
    waiting: Send | None = None
    for step in case["passes"]:
        now = datetime.fromisoformat(step["now"])
        if state is not None and waiting is not None:
            when = sent_at.get(waiting.step_id, waiting.due_at.isoformat())
            if when is not None and datetime.fromisoformat(when) <= now:
                state = replace(state, pending=False, last_sent_at=datetime.fromisoformat(when))
                waiting = None
        facts = replace(facts_at(events, now, case.get("supporter", {})), campaign_sends=sends)
        enrol_as = 1 if state is None and triggered(journey, facts) else None
        result: Plan = plan(
            journey,
            state,
            facts,
            now,
            petition=petition,
            segments=segments,
            zone=zone,
            enrol_as=enrol_as,
        )
        state = result.state
        queued = [s for s in result.sends if s.status == "queued"]
        if queued:
            waiting = queued[-1]
        sends += tuple(
            s.due_at for s in result.sends if not s.transactional and s.status == "queued"
        )
        found.append([describe(a) for a in result.actions])
    return found
