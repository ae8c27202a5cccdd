"""What a simulation shows: emails sent per day and step, what was not sent and why, who is
still waiting at the end and for what, how the enrolments ended."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from engine.rules.journeys import Journey, SendStep, WaitStep, WaitUntilStep
from engine.store import journeys, petitions, virtual
from engine.store.petitions import MilestoneRead, PetitionRead


@dataclass(frozen=True)
class Unsent:
    step_id: str
    status: str
    reason: str | None
    count: int
    # the earliest due time, for emails still queued at the end
    due: datetime | None


@dataclass(frozen=True)
class Waiting:
    """`count` people still on `step_id` at the end, and why (a phrase after the step)."""

    step_id: str
    count: int
    why: str


@dataclass
class Outcome:
    journey_id: str
    petition: str
    zone: str
    # the journey's send steps, in order: the columns of the table
    send_steps: list[str]
    # (day in the campaign's zone, step) -> emails sent
    sent: Counter[tuple[str, str]]
    unsent: list[Unsent]
    waiting: list[Waiting]
    # "active" or the exit reason -> enrolments
    states: Counter[str]
    signatures: int
    milestones: list[MilestoneRead]
    # the virtual instants the run visited, and the journey passes it ran
    instants: list[datetime] = field(default_factory=list)
    passes: int = 0
    # said before the table: what the run cannot show (a milestone never reached)
    notes: list[str] = field(default_factory=list)


def when(at: datetime, zone: str) -> str:
    return at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def _span(first: datetime | None, last: datetime | None, zone: str) -> str:
    if first is None or last is None:
        return "no due time"
    if first == last:
        return f"due on {when(first, zone)}"
    return f"due from {when(first, zone)} to {when(last, zone)}"


def why_waiting(
    journey: Journey,
    step_id: str,
    *,
    petition: PetitionRead,
    first_due: datetime | None,
    last_due: datetime | None,
    zone: str,
) -> str:
    """Why people on `step_id` have not moved on: what the step waits for, and until when."""
    step = journey.step(step_id)
    due = _span(first_due, last_due, zone)
    if isinstance(step, WaitUntilStep):
        spec = step.wait_until
        timeout = f"timeout after {spec.timeout}, {due}" if spec.timeout else due
        if spec.milestone is not None:
            slug = spec.petition or petition.slug
            reached = {m.threshold: m.reached_at for m in petition.milestones}
            if slug != petition.slug:
                state = "a petition this run does not simulate"
            elif reached.get(spec.milestone) is not None:
                state = "reached"
            else:
                state = f"not reached: {petition.count:,} signatures"
            return f"for milestone {spec.milestone:,} of {slug} ({state}; {timeout})"
        if spec.event is not None:
            return f"for an event '{spec.event}' ({timeout})"
        assert spec.date is not None
        return f"until {when(spec.date, zone)}"
    if isinstance(step, WaitStep):
        return f"for {step.wait} to pass ({due})"
    if isinstance(step, SendStep):
        return f"for their '{step_id}' email to be sent ({due})"
    return f"({due})"


def read(session: Session, journey_id: str, *, end: datetime) -> Outcome:
    """The journey's tallies in the run's database."""
    loaded = journeys.by_id(session, journey_id)
    assert loaded is not None
    zone = loaded.zone
    petition = petitions.read(session, loaded.petition)
    tz = ZoneInfo(zone)
    sent: Counter[tuple[str, str]] = Counter()
    unsent: dict[tuple[str, str, str | None], Unsent] = {}
    for row in virtual.emails(session, journey_id):
        if row.status == "sent" and row.at <= end:
            sent[(row.at.astimezone(tz).date().isoformat(), row.step_id)] += row.count
            continue
        key = (row.step_id, row.status, row.reason)
        seen = unsent.get(key)
        due = row.at if row.status == "queued" else None
        if seen is not None:
            due = min((d for d in (seen.due, due) if d is not None), default=None)
        unsent[key] = Unsent(*key, row.count + (seen.count if seen else 0), due)
    states: Counter[str] = Counter()
    waiting: list[Waiting] = []
    for tally in virtual.enrolments(session, journey_id):
        states[tally.exit_reason or tally.state] += tally.count
        if tally.state != "active" or tally.step_id is None:
            continue
        walked = journeys.version_by_pk(session, tally.version_id).journey
        why = why_waiting(
            walked,
            tally.step_id,
            petition=petition,
            first_due=tally.first_due,
            last_due=tally.last_due,
            zone=zone,
        )
        waiting.append(Waiting(tally.step_id, tally.count, why))
    order = {s.id: i for i, s in enumerate(loaded.journey.steps)}
    return Outcome(
        journey_id=journey_id,
        petition=petition.slug,
        zone=zone,
        send_steps=[s.id for s in loaded.journey.steps if isinstance(s, SendStep)],
        sent=sent,
        unsent=sorted(unsent.values(), key=lambda u: (order.get(u.step_id, 0), u.status)),
        waiting=sorted(waiting, key=lambda w: order.get(w.step_id, len(order))),
        states=states,
        signatures=petition.count,
        milestones=petition.milestones,
    )
