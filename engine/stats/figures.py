"""A journey's figures, pure: rates from the summary rows, steps in the journey's order,
the milestone emails, the A/B verdicts. No database: engine/stats/report.py reads, this
module decides what the numbers say."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from engine.rules.journeys import (
    BranchStep,
    ExitStep,
    Journey,
    MilestoneTrigger,
    SendStep,
    WaitStep,
    WaitUntilStep,
)
from engine.stats.ab import Arm, Verdict, compare
from engine.store.counts import StepRow
from engine.store.step_figures import StepFigures

MONTHS = 12  # a monthly gift annualised


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class Line:
    """Figures of a step, of one of its variants, or of the whole journey, with rates over
    the emails sent."""

    figures: StepFigures
    variant: str | None = None

    @property
    def click_rate(self) -> float | None:
        return rate(self.figures.clickers, self.figures.sent)

    @property
    def conversion_rate(self) -> float | None:
        return rate(self.figures.donors, self.figures.sent)

    @property
    def monthly_annualised_cents(self) -> int:
        return self.figures.monthly_cents * MONTHS

    @property
    def one_off_per_thousand_cents(self) -> int | None:
        return _per_thousand(self.figures.one_off_cents, self.figures.sent)

    @property
    def monthly_annualised_per_thousand_cents(self) -> int | None:
        return _per_thousand(self.monthly_annualised_cents, self.figures.sent)


def _per_thousand(cents: int, sent: int) -> int | None:
    return round(cents * 1000 / sent) if sent else None


@dataclass(frozen=True)
class StepView:
    id: str
    kind: str  # send | wait | wait_until | branch | exit
    label: str  # the template(s), the wait, the condition in short
    targets: list[str]
    people_here: int
    milestone: int | None = None  # the milestone this step's email announces
    total: Line | None = None  # send steps: all variants together
    variants: list[Line] = field(default_factory=list)


@dataclass(frozen=True)
class MilestoneView:
    threshold: int
    reached_at: datetime | None
    step_id: str | None  # the email that announces it, if the journey has one
    produced: Line | None


@dataclass(frozen=True)
class Day:
    day: date
    signatures: int
    total: int  # the petition's count at the end of that day


@dataclass(frozen=True)
class AbResult:
    step_id: str
    verdict: Verdict


@dataclass(frozen=True)
class JourneyStats:
    journey_id: str
    title: str
    petition: str
    signatures: int
    total: Line
    steps: list[StepView]
    milestones: list[MilestoneView]
    ab: list[AbResult]
    days: list[Day]
    unattributed: StepFigures  # gifts no email is credited with (gifts and amounts only)


@dataclass(frozen=True)
class SegmentLine:
    segment: str
    description: str
    line: Line


@dataclass(frozen=True)
class SegmentStats:
    """A journey's emails to each declared segment's people, as the segments stand `at`."""

    journey_id: str
    at: datetime
    segments: list[SegmentLine]


def milestone_emails(journey: Journey) -> dict[str, int]:
    """step id -> milestone threshold, for the emails that announce a milestone: the first
    send step after a `wait_until: {milestone}` step (in the journey's order), or the
    first send step of a journey a milestone triggers."""
    found: dict[str, int] = {}
    pending: int | None = None
    if isinstance(journey.trigger, MilestoneTrigger):
        pending = journey.trigger.milestone.threshold
    for step in journey.steps:
        if isinstance(step, WaitUntilStep) and step.wait_until.milestone is not None:
            pending = step.wait_until.milestone
        elif isinstance(step, SendStep) and pending is not None:
            found[step.id] = pending
            pending = None
    return found


def _kind_and_label(step: object) -> tuple[str, str]:
    if isinstance(step, SendStep):
        return "send", ", ".join(step.send.templates())
    if isinstance(step, WaitStep):
        return "wait", f"wait {step.wait}"
    if isinstance(step, WaitUntilStep):
        spec = step.wait_until
        target = (
            f"milestone {spec.milestone:,}"
            if spec.milestone is not None
            else f"event {spec.event}"
            if spec.event is not None
            else f"{spec.date:%Y-%m-%d %H:%M}"
        )
        return "wait_until", f"until {target}"
    if isinstance(step, BranchStep):
        return "branch", f"{len(step.branch.cases)} case(s), else {step.branch.otherwise}"
    assert isinstance(step, ExitStep)
    return "exit", f"exit ({step.exit})"


def _sum(lines: Sequence[StepFigures]) -> StepFigures:
    total = StepFigures()
    for figures in lines:
        total = total + figures
    return total


def verdicts(step: SendStep, variants: Sequence[Line]) -> list[Verdict]:
    """Each variant against the first declared one, on gifts and on clicks."""
    declared = [v.name for v in step.send.variants]
    by_name = {line.variant: line.figures for line in variants}
    if len(declared) < 2:
        return []
    found: list[Verdict] = []
    control = by_name.get(declared[0], StepFigures())
    for name in declared[1:]:
        challenger = by_name.get(name, StepFigures())
        for metric, attribute in (("gift rate", "donors"), ("click rate", "clickers")):
            found.append(
                compare(
                    Arm(declared[0], control.sent, getattr(control, attribute)),
                    Arm(name, challenger.sent, getattr(challenger, attribute)),
                    metric,
                )
            )
    return found


def journey_stats(
    journey: Journey,
    *,
    petition: str,
    signatures: int,
    milestones: Sequence[tuple[int, datetime | None]],
    rows: Sequence[StepRow],
    people: Mapping[str, int],
    days: Sequence[tuple[date, int]],
    unattributed: StepFigures,
) -> JourneyStats:
    """Assemble what the store read into the figures a fundraiser reads."""
    announced = milestone_emails(journey)
    by_step: dict[str, list[StepRow]] = {}
    for row in rows:
        by_step.setdefault(row.step_id, []).append(row)
    steps: list[StepView] = []
    ab: list[AbResult] = []
    for step in journey.steps:
        kind, label = _kind_and_label(step)
        total = None
        variants: list[Line] = []
        if isinstance(step, SendStep):
            counted = by_step.get(step.id, [])
            total = Line(_sum([r.figures for r in counted]))
            order = {v.name: i for i, v in enumerate(step.send.variants)}
            variants = sorted(
                (Line(r.figures, r.variant) for r in counted if r.variant is not None),
                key=lambda line: (order.get(line.variant or "", len(order)), line.variant),
            )
            ab += [AbResult(step.id, v) for v in verdicts(step, variants)]
        steps.append(
            StepView(
                id=step.id,
                kind=kind,
                label=label,
                targets=journey.targets(step.id),
                people_here=people.get(step.id, 0),
                milestone=announced.get(step.id),
                total=total,
                variants=variants,
            )
        )
    totals = {s.id: s.total for s in steps if s.total is not None}
    step_of = {threshold: step_id for step_id, threshold in announced.items()}
    milestone_views = [
        MilestoneView(t, at, step_of.get(t), totals.get(step_of.get(t, ""))) for t, at in milestones
    ]
    # The count may hold signatures without a dated row (counted elsewhere and added to it,
    # as a petition that starts the campaign at a count): they come before the first day,
    # so that the curve ends at the count and each milestone's mark sits on it.
    running = max(0, signatures - sum(count for _, count in days))
    day_views = []
    for day, count in days:
        running += count
        day_views.append(Day(day, count, running))
    return JourneyStats(
        journey_id=journey.id,
        title=journey.title,
        petition=petition,
        signatures=signatures,
        total=Line(_sum([r.figures for r in rows])),
        steps=steps,
        milestones=milestone_views,
        ab=ab,
        days=day_views,
        unattributed=unattributed,
    )
