"""A journey run in virtual time on a throwaway SQLite database, jumping from due time to
due time.

At each instant: the facts due by then are recorded (signatures, gifts, the milestone push),
the same journey pass as production runs (`passes.tick`), and the emails due are marked
sent at that instant (`virtual.send_due`: the last look of a real dispatch has nothing to
refuse here, and rendering 140,000 emails is what made the hourly simulator slow). When
emails were sent and someone is still due, the pass runs again at the same instant: a step
may wait for the previous email to leave. The next instant is the earliest of: an active
enrolment's due time, a queued email's due time, the next recorded fact, and the end of
the run. So a month is a few dozen passes, not 720.

Gifts are not instants of their own unless a journey is triggered by a gift or a segment:
a gift only makes its giver leave (the goal), and the pass at the next instant records it
before moving anyone, so nobody gets an email a pass at the gift's hour would have stopped.
The exit is then dated at that instant; the emails and the final counts are those of an
hourly `tick` (tests/store/test_simulation.py holds the two to it).
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from engine.errors import Invalid
from engine.progress import QUIET, Progress
from engine.rules.campaigns import CampaignDef
from engine.rules.conditions import Condition
from engine.rules.journeys import DonatedTrigger, Journey, SegmentTrigger, WaitUntilStep
from engine.simulation import report
from engine.simulation.population import Signer, Timeline, signers
from engine.simulation.report import Outcome
from engine.store import journeys, migrate, passes, petitions, virtual
from engine.store.db import make_engine, make_sessionmaker

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Scenario:
    """Who signs, when, and what else happens: the options of `mobilise simulate`."""

    supporters: int = 1000
    days: int = 30
    # signatures a day (None: everyone within the first day)
    signing_rate: float | None = None
    # signatures counted before the start
    already: int = 0
    # days after the start at which the petition reaches the milestones the journey
    # waits for (signatures from elsewhere: paper, partner sites)
    milestone_at: float | None = None
    consent_rate: float = 0.6
    donor_rate: float = 0.1
    gift_rate: float = 0.05
    start: datetime = datetime(2026, 5, 11, 8, tzinfo=UTC)
    seed: int = 1

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)

    def people(self) -> list[Signer]:
        return signers(
            self.supporters,
            start=self.start,
            days=self.days,
            rate=self.signing_rate,
            rng=random.Random(self.seed),
            consent_rate=self.consent_rate,
            donor_rate=self.donor_rate,
            gift_rate=self.gift_rate,
        )


def awaited(journey: Journey, petition: str) -> list[tuple[str, int]]:
    """(step id, threshold) of the milestones of `petition` the journey waits for."""
    return [
        (step.id, step.wait_until.milestone)
        for step in journey.steps
        if isinstance(step, WaitUntilStep)
        and step.wait_until.milestone is not None
        and (step.wait_until.petition or petition) == petition
    ]


def notes(journey: Journey, petition: str, scenario: Scenario, people: list[Signer]) -> list[str]:
    """What the run will not show, said before its figures: a milestone it never reaches."""
    if scenario.milestone_at is not None:
        return []
    signed = sum(1 for s in people if s.signed_at <= scenario.end)
    most = scenario.already + signed
    found = []
    for step_id, threshold in awaited(journey, petition):
        if most >= threshold:
            continue
        step = journey.step(step_id)
        assert isinstance(step, WaitUntilStep)
        timeout = step.wait_until.timeout
        found.append(
            f"{step_id} waits for milestone {threshold:,} of {petition}, which this run never "
            f"reaches (at most {most:,} signatures: {scenario.already:,} already and "
            f"{signed:,} signers); "
            + (f"people leave it only at its {timeout} timeout. " if timeout else "")
            + "--milestone-at DAYS (or --already N) shows what follows."
        )
    return found


@contextmanager
def scratch() -> Iterator[sessionmaker[Session]]:
    """A migrated SQLite database in a temporary folder, removed afterwards: a simulation
    never touches the project's own database."""
    with tempfile.TemporaryDirectory(prefix="mobilise-sim-") as folder:
        url = f"sqlite:///{Path(folder) / 'sim.db'}"
        migrate.upgrade(url)
        engine = make_engine(url)
        try:
            yield make_sessionmaker(engine)
        finally:
            engine.dispose()


def prepare(
    sessions: sessionmaker[Session],
    campaign: CampaignDef,
    journey: Journey,
    scenario: Scenario,
    people: list[Signer],
) -> Timeline:
    """The campaign's petition and journeys at the start, and the run's facts in order."""
    begin = scenario.start
    push = None
    if scenario.milestone_at is not None:
        thresholds = [t for _, t in awaited(journey, campaign.petition.slug)]
        if not thresholds:
            raise Invalid(
                f"journey '{journey.id}' waits for no milestone of {campaign.petition.slug}",
                field="milestone_at",
                hint="--milestone-at applies to a `wait_until: {milestone: N}` step",
            )
        push = (begin + timedelta(days=scenario.milestone_at), max(thresholds))
    with sessions.begin() as session:
        petition = petitions.upsert(session, campaign.petition, now=begin)
        virtual.raise_count(session, petition_id=petition.id, to=scenario.already, now=begin)
        journeys.sync_journeys(session, [campaign], begin - timedelta(days=1))
        petition_id = petition.id
    return Timeline.of(people, petition_id=petition_id, begin=begin, push=push)


@dataclass
class Clock:
    """The instants a run visited and the journey passes it ran."""

    instants: list[datetime] = field(default_factory=list)
    passes: int = 0


def gifts_are_instants(campaign: CampaignDef) -> bool:
    """Whether a gift can enrol someone (a gift or segment trigger): then it is an instant."""
    return any(
        isinstance(Journey.model_validate(raw).trigger, DonatedTrigger | SegmentTrigger)
        for raw in campaign.journeys
    )


def run(
    sessions: sessionmaker[Session],
    timeline: Timeline,
    *,
    named: Mapping[str, Condition],
    end: datetime,
    gifts: bool,
    progress: Progress = QUIET,
) -> Clock:
    """Visit every instant at which something is due, from the timeline's start to `end`;
    `progress` counts virtual hours."""
    clock = Clock()
    with sessions.begin() as session:
        # The run syncs its journeys once, before it starts: these are all its versions.
        versions = journeys.current(session)
    # A pass after a send moves people by at most one send step: a bound on the passes at
    # one instant, whatever the journey does.
    rounds = max((len(v.journey.steps) for v in versions), default=0) + 1
    now = shown = timeline.begin
    progress.phase("Running in virtual time", (end - now) / HOUR)
    while True:
        with sessions.begin() as session:
            timeline.record(session, now)
            for _ in range(rounds):
                passes.tick(session, now=now, segments=named)
                clock.passes += 1
                # Again at the same instant while something was sent: the next step of a
                # journey waits for its previous email (a wait-until met by a milestone
                # moves at once, whatever its due time).
                if not virtual.send_due(session, now=now):
                    break
            due = virtual.next_due(session, versions, after=now)
        clock.instants.append(now)
        progress.advance((now - shown) / HOUR)
        shown = now
        if now >= end:
            return clock
        upcoming = [t for t in (due, timeline.next_fact(gifts=gifts)) if t is not None]
        now = min([*upcoming, end])


def simulate(
    campaign: CampaignDef,
    journey: Journey,
    scenario: Scenario,
    *,
    named: Mapping[str, Condition],
    progress: Progress = QUIET,
) -> Outcome:
    """Run `journey` (and its campaign's others) over `scenario`; the journey's tallies."""
    progress.phase("Preparing a scratch database", 2)
    people = scenario.people()
    with scratch() as sessions:
        progress.advance(1)
        timeline = prepare(sessions, campaign, journey, scenario, people)
        progress.advance(1)
        clock = run(
            sessions,
            timeline,
            named=named,
            end=scenario.end,
            gifts=gifts_are_instants(campaign),
            progress=progress,
        )
        with sessions.begin() as session:
            outcome = report.read(session, journey.id, end=scenario.end)
    outcome.instants, outcome.passes = clock.instants, clock.passes
    outcome.notes = notes(journey, campaign.petition.slug, scenario, people)
    return outcome
