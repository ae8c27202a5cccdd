"""What the schema cannot see in a journey: unknown petitions, milestones, segments,
steps, templates and consents; loops and unreachable steps; variables a step cannot
provide. Every mistake as `file:line: message`.

Pure: the catalogue says what the campaign may refer to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import yaml

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
from engine.rules.template_variables import GIVEN_FOR_DONORS, GIVEN_TO_EVERYONE
from engine.rules.windows import next_allowed
from engine.rules.yaml_lines import locate

_ANY_INSTANT = datetime(2026, 1, 5, tzinfo=UTC)


@dataclass(frozen=True)
class Catalogue:
    """What the campaign may refer to; `None` means "not checked" (e.g. templates unknown)."""

    segments: Mapping[str, SegmentDef]
    templates: frozenset[str] | None = None
    # template name -> variables it uses
    template_variables: Mapping[str, frozenset[str]] | None = None
    # other campaigns' petitions (slug -> milestones), for cross-campaign triggers
    petitions: Mapping[str, Sequence[int]] | None = None


@dataclass
class JourneyCheck:
    """What the schema cannot see. `stand_ins` names the parts of a journey that are
    stand-ins (see engine.rules.campaign_checks), and `campaign` is None when the campaign part is
    invalid: checks that would need the missing parts are left out rather than guessed."""

    journey: Journey
    campaign: CampaignDef | None
    petitions: Mapping[str, Sequence[int]]
    catalogue: Catalogue
    name: str
    node: yaml.Node | None
    where: list[int | str]
    stand_ins: frozenset[str] = frozenset()

    def problem(self, message: str, *path: int | str, hint: str | None = None) -> Problem:
        line = locate(self.node, [*self.where, *path])
        return Problem(f"journey '{self.journey.id}': {message}", self.name, line, hint=hint)

    def run(self) -> list[Problem]:
        checks_trigger = self.campaign is not None and "trigger" not in self.stand_ins
        found = (self.trigger() if checks_trigger else []) + self.targets() + self.window()
        if not found and not self.stand_ins:
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

    def window(self) -> list[Problem]:
        """Quiet hours that cover the whole send window: no campaign email could ever leave
        (the passes would fail on the first one). Wall-clock times repeat every week, so a
        week from any instant tells."""
        journey = self.journey
        if journey.send_window is None or journey.quiet_hours is None:
            return []
        try:
            next_allowed(
                _ANY_INSTANT, zone="UTC", quiet=journey.quiet_hours, window=journey.send_window
            )
        except ValueError:
            return [
                self.problem(
                    "the send window never opens outside quiet hours",
                    "send_window",
                    hint="widen the window or shorten the quiet hours",
                )
            ]
        return []

    def targets(self) -> list[Problem]:
        found = []
        ids = self.journey.by_id()
        if len(ids) != len(self.journey.steps):
            found.append(self.problem("two steps share an id", "steps"))
        for index, step in enumerate(self.journey.steps):
            for target, key in self.journey.edges(step.id):
                if target != EXIT and target not in ids:
                    found.append(
                        self.problem(
                            f"step '{step.id}' leads to unknown step '{target}'",
                            "steps",
                            index,
                            *key,
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
        campaign = self.campaign
        # Without the whole journey, who reaches a step is unknown: donor variables pass.
        donor_context = {} if self.stand_ins else self.donor_context()
        for index, step in enumerate(self.journey.steps):
            if (
                isinstance(step, WaitUntilStep)
                and step.wait_until.milestone is not None
                and campaign is not None
            ):
                slug = step.wait_until.petition or campaign.petition.slug
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
            if spec.max_signature_age is not None and not isinstance(
                self.journey.trigger, SignedTrigger
            ):
                found.append(
                    self.problem(
                        "`max_signature_age` needs a journey entered by signing (`signed:`)",
                        "steps",
                        index,
                        "send",
                        "max_signature_age",
                    )
                )
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
            consents = campaign.petition.consents if campaign is not None else None
            if spec.consent is not None and consents is not None and spec.consent not in consents:
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
                donor = donor_context.get(step.id, True)
                found += self.template(step.id, template, donor, index)
        return found

    def template(self, step_id: str, template: str, donor: bool, index: int) -> list[Problem]:
        known = self.catalogue.templates
        if known is not None and template not in known:
            return [self.problem(f"unknown template '{template}'", "steps", index, "send")]
        needed = (self.catalogue.template_variables or {}).get(template, frozenset())
        provided = GIVEN_TO_EVERYONE | (GIVEN_FOR_DONORS if donor else frozenset())
        missing = sorted(needed - provided)
        if not missing:
            return []
        hint = None
        if set(missing) & GIVEN_FOR_DONORS:
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
