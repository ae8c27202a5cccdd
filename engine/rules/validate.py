"""Validation of campaign files and segments: every mistake as `file:line: message`.

Pure: callers read the files and pass what they know (template names, each template's
variables, the segments) as arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import yaml
from pydantic import ValidationError

from engine.errors import Problem
from engine.rules.campaigns import CampaignDef
from engine.rules.conditions import Condition, DonatedSinceEntry, InSegment, implies_donor, walk
from engine.rules.journeys import (
    EXIT,
    BranchStep,
    ClickedTrigger,
    DonatedTrigger,
    Journey,
    MilestoneTrigger,
    SegmentTrigger,
    SendStep,
    SignedTrigger,
    WaitUntilStep,
)
from engine.rules.segments import SegmentDef
from engine.rules.sources import load_model, locate

# What every journey email can be given when it is rendered, and what only donors have.
# The renderer (engine/render) fills these; keep the names in step with docs/journeys.md.
PROVIDED_ALWAYS = frozenset(
    {
        "first_name",
        "last_name",
        "email",
        "locale",
        "petition_title",
        "signature_count",
        "milestones",
        "milestone",
        "unsubscribe_url",
        "journey",
        "step",
        "variant",
    }
)
PROVIDED_TO_DONORS = frozenset(
    {"last_gift", "last_gift_monthly", "last_gift_cents", "ask_amounts", "monthly_donor"}
)


@dataclass(frozen=True)
class Catalogue:
    """What the campaign may refer to; `None` means "not checked" (e.g. templates unknown)."""

    segments: Mapping[str, SegmentDef]
    templates: frozenset[str] | None = None
    # template name -> variables it uses
    template_variables: Mapping[str, frozenset[str]] | None = None
    # other campaigns' petitions (slug -> milestones), for cross-campaign triggers
    petitions: Mapping[str, Sequence[int]] | None = None


def validate_campaign(
    text: str, name: str, catalogue: Catalogue
) -> tuple[CampaignDef | None, list[Journey], list[Problem]]:
    campaign, node, problems = load_model(text, name, CampaignDef)
    if campaign is None:
        return None, [], problems
    petitions: dict[str, Sequence[int]] = dict(catalogue.petitions or {})
    petitions[campaign.petition.slug] = campaign.petition.milestones
    journeys: list[Journey] = []
    seen: set[str] = set()
    for index, raw in enumerate(campaign.journeys):
        where: list[int | str] = ["journeys", index]
        try:
            journey = Journey.model_validate(raw)
        except ValidationError as exc:
            for error in exc.errors():
                loc: list[int | str] = where + [p for p in error["loc"] if isinstance(p, int | str)]
                field = ".".join(str(p) for p in loc)
                problems.append(
                    Problem(f"{field}: {error['msg']}", file=name, line=locate(node, loc))
                )
            continue
        if journey.id in seen:
            problems.append(
                Problem(
                    f"journey '{journey.id}' is declared twice", file=name, line=locate(node, where)
                )
            )
        seen.add(journey.id)
        checker = _JourneyCheck(journey, campaign, petitions, catalogue, name, node, where)
        problems += checker.run()
        journeys.append(journey)
    return campaign, journeys, problems


@dataclass
class _JourneyCheck:
    journey: Journey
    campaign: CampaignDef
    petitions: Mapping[str, Sequence[int]]
    catalogue: Catalogue
    name: str
    node: yaml.Node | None
    where: list[int | str]

    def problem(self, message: str, *path: int | str, hint: str | None = None) -> Problem:
        line = locate(self.node, [*self.where, *path])
        return Problem(f"journey '{self.journey.id}': {message}", self.name, line, hint=hint)

    def run(self) -> list[Problem]:
        found = self.trigger() + self.targets()
        if not found:
            found += self.graph()
        found += self.steps()
        for condition, path in self.conditions():
            found += self.condition(condition, path)
        return found

    def trigger(self) -> list[Problem]:
        trigger = self.journey.trigger
        if isinstance(trigger, SignedTrigger) and trigger.signed not in self.petitions:
            return [self.problem(f"unknown petition '{trigger.signed}'", "trigger", "signed")]
        if isinstance(trigger, MilestoneTrigger):
            spec = trigger.milestone
            if spec.petition not in self.petitions:
                return [self.problem(f"unknown petition '{spec.petition}'", "trigger")]
            if spec.threshold not in self.petitions[spec.petition]:
                return [
                    self.problem(
                        f"{spec.threshold} is not a milestone of '{spec.petition}'",
                        "trigger",
                        "milestone",
                        "threshold",
                    )
                ]
        if isinstance(trigger, SegmentTrigger):
            if trigger.entered_segment not in self.catalogue.segments:
                return [self.problem(f"unknown segment '{trigger.entered_segment}'", "trigger")]
            if self.journey.reentry != "never":
                return [
                    self.problem(
                        "a segment trigger needs `reentry: never` (members stay "
                        "members: they would re-enter at once)",
                        "reentry",
                    )
                ]
        if isinstance(trigger, ClickedTrigger) and trigger.clicked.journey == self.journey.id:
            if trigger.clicked.step not in self.journey.by_id():
                return [self.problem(f"unknown step '{trigger.clicked.step}'", "trigger")]
        if isinstance(trigger, DonatedTrigger) and self.journey.goal is not None:
            if any(isinstance(c, DonatedSinceEntry) for c in walk(self.journey.goal)):
                return [
                    self.problem(
                        "a journey entered by donating cannot have giving as its "
                        "goal: everyone would leave at once",
                        "goal",
                    )
                ]
        return []

    def targets(self) -> list[Problem]:
        found = []
        ids = self.journey.by_id()
        if len(ids) != len(self.journey.steps):
            found.append(self.problem("two steps share an id", "steps"))
        for index, step in enumerate(self.journey.steps):
            for target in self.journey.targets(step.id):
                if target != EXIT and target not in ids:
                    found.append(
                        self.problem(
                            f"step '{step.id}' leads to unknown step '{target}'", "steps", index
                        )
                    )
        for old, new in self.journey.migrate.items():
            if new not in ids:
                found.append(
                    self.problem(f"migrate: '{old}' maps to unknown step '{new}'", "migrate", old)
                )
        return found

    def graph(self) -> list[Problem]:
        """Unreachable steps and loops: a journey is a directed acyclic graph from step one."""
        found = []
        index = {s.id: i for i, s in enumerate(self.journey.steps)}
        state: dict[str, int] = {}  # 1 = on the current path, 2 = done

        def visit(step_id: str, path: list[str]) -> None:
            state[step_id] = 1
            for target in self.journey.targets(step_id):
                if target == EXIT:
                    continue
                if state.get(target) == 1:
                    loop = " -> ".join([*path[path.index(target) :], step_id, target])
                    found.append(
                        self.problem(
                            f"steps loop: {loop}",
                            "steps",
                            index[step_id],
                            hint="a supporter never takes the same step twice",
                        )
                    )
                elif target not in state:
                    visit(target, [*path, step_id])
            state[step_id] = 2

        visit(self.journey.steps[0].id, [])
        for step in self.journey.steps:
            if step.id not in state:
                found.append(
                    self.problem(f"step '{step.id}' is unreachable", "steps", index[step.id])
                )
        return found

    def steps(self) -> list[Problem]:
        found = []
        consents = self.campaign.petition.consents
        donor_context = self.donor_context()
        for index, step in enumerate(self.journey.steps):
            if isinstance(step, WaitUntilStep) and step.wait_until.milestone is not None:
                slug = step.wait_until.petition or self.campaign.petition.slug
                if slug not in self.petitions:
                    found.append(self.problem(f"unknown petition '{slug}'", "steps", index))
                elif step.wait_until.milestone not in self.petitions[slug]:
                    found.append(
                        self.problem(
                            f"{step.wait_until.milestone} is not a milestone of '{slug}'",
                            "steps",
                            index,
                            "wait_until",
                            "milestone",
                        )
                    )
            if not isinstance(step, SendStep):
                continue
            spec = step.send
            if not spec.transactional and spec.consent is None:
                found.append(
                    self.problem(
                        f"step '{step.id}' is a campaign email without a consent purpose",
                        "steps",
                        index,
                        "send",
                        hint="add `consent: <purpose>` or, for a receipt, `transactional: true`",
                    )
                )
            if spec.consent is not None and spec.consent not in consents:
                found.append(
                    self.problem(
                        f"unknown consent purpose '{spec.consent}' (declared: "
                        f"{', '.join(sorted(consents)) or 'none'})",
                        "steps",
                        index,
                        "send",
                        "consent",
                    )
                )
            for template in spec.templates():
                found += self.template(step.id, template, donor_context[step.id], index)
        return found

    def template(self, step_id: str, template: str, donor: bool, index: int) -> list[Problem]:
        known = self.catalogue.templates
        if known is not None and template not in known:
            return [self.problem(f"unknown template '{template}'", "steps", index, "send")]
        needed = (self.catalogue.template_variables or {}).get(template, frozenset())
        provided = PROVIDED_ALWAYS | (PROVIDED_TO_DONORS if donor else frozenset())
        missing = sorted(needed - provided)
        if not missing:
            return []
        hint = None
        if set(missing) & PROVIDED_TO_DONORS:
            hint = "donor variables are only there when every path to the step checks giving"
        return [
            self.problem(
                f"template '{template}' uses {', '.join(missing)}, which step "
                f"'{step_id}' cannot provide",
                "steps",
                index,
                "send",
                hint=hint,
            )
        ]

    def donor_context(self) -> dict[str, bool]:
        """Steps that only donors reach: every path passes a branch case that implies giving."""
        segments = {k: v.where for k, v in self.catalogue.segments.items()}
        start = isinstance(self.journey.trigger, DonatedTrigger)
        context: dict[str, bool] = {}
        for step in self.journey.steps:  # declaration order; loops were reported elsewhere
            context.setdefault(step.id, start if step is self.journey.steps[0] else True)
        for _ in range(len(self.journey.steps)):
            incoming: dict[str, list[bool]] = {s.id: [] for s in self.journey.steps}
            for step in self.journey.steps:
                edges = [(t, context[step.id]) for t in self.journey.targets(step.id)]
                if isinstance(step, BranchStep):
                    edges = [
                        (c.goto, context[step.id] or implies_donor(c.when, segments))
                        for c in step.branch.cases
                    ]
                    edges.append((step.branch.otherwise, context[step.id]))
                for target, donor in edges:
                    if target in incoming:
                        incoming[target].append(donor)
            for step_id, values in incoming.items():
                if step_id != self.journey.steps[0].id:
                    context[step_id] = bool(values) and all(values)
        return context

    def conditions(self) -> list[tuple[Condition, list[int | str]]]:
        found: list[tuple[Condition, list[int | str]]] = []
        if self.journey.goal is not None:
            found.append((self.journey.goal, ["goal"]))
        for index, step in enumerate(self.journey.steps):
            if isinstance(step, BranchStep):
                for case_index, case in enumerate(step.branch.cases):
                    found.append((case.when, ["steps", index, "branch", "cases", case_index]))
        return found

    def condition(self, condition: Condition, path: list[int | str]) -> list[Problem]:
        found = []
        for node in walk(condition):
            if isinstance(node, InSegment) and node.segment not in self.catalogue.segments:
                found.append(self.problem(f"unknown segment '{node.segment}'", *path))
        return found
