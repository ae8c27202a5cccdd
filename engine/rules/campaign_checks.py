"""Validation of campaign files and segments: every mistake as `file:line: message`.

Pure: callers read the files and pass what they know (template names, each template's
variables, the segments) as arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml
from pydantic import ValidationError

from engine.errors import Problem
from engine.rules import optin
from engine.rules.campaigns import CampaignDef
from engine.rules.conditions import Condition, DonatedSinceEntry, InSegment, implies_donor, walk
from engine.rules.journeys import (
    EXIT,
    BranchStep,
    ClickedTrigger,
    DonatedTrigger,
    ExitStep,
    Journey,
    MilestoneTrigger,
    SegmentTrigger,
    SendStep,
    SignedTrigger,
    WaitUntilStep,
)
from engine.rules.segments import SegmentDef
from engine.rules.template_variables import (
    CONFIRMATION_EMAIL,
    GIVEN_FOR_DONORS,
    GIVEN_TO_EVERYONE,
)
from engine.rules.windows import next_allowed
from engine.rules.yaml_lines import load_model, locate


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
    """Every problem of a campaign file: each schema error (of the petition and of every
    journey), then what the schema cannot see (unknown steps, templates, consents...).

    A journey with schema errors is still checked as far as its valid parts allow: its
    invalid steps become stand-ins that keep their ids, so the other steps' targets,
    templates and consents are checked in the same run; only valid journeys are returned.
    """
    campaign, node, problems = load_model(text, name, CampaignDef)
    if node is None:
        return None, [], problems
    petitions: dict[str, Sequence[int]] = dict(catalogue.petitions or {})
    if campaign is not None:
        petitions[campaign.petition.slug] = campaign.petition.milestones
        problems += _confirmation(campaign, catalogue, name, node)
    journeys: list[Journey] = []
    seen: set[str] = set()
    for index, raw in _raw_journeys(campaign, text):
        where: list[int | str] = ["journeys", index]
        journey, stand_ins = _journey(raw, name, node, where, problems)
        if journey is None:
            continue
        if journey.id in seen:
            problems.append(
                Problem(
                    f"journey '{journey.id}' is declared twice", file=name, line=locate(node, where)
                )
            )
        seen.add(journey.id)
        checker = _JourneyCheck(
            journey, campaign, petitions, catalogue, name, node, where, stand_ins
        )
        problems += checker.run()
        if not stand_ins:
            journeys.append(journey)
    return campaign, journeys if campaign is not None else [], problems


def _confirmation(
    campaign: CampaignDef, catalogue: Catalogue, name: str, node: yaml.Node
) -> list[Problem]:
    """A double opt-in petition needs the `confirm` template, given what the engine gives
    it (engine.rules.template_variables.CONFIRMATION_EMAIL)."""
    if not campaign.petition.double_opt_in or catalogue.templates is None:
        return []
    line = locate(node, ["petition", "double_opt_in"])
    if optin.TEMPLATE not in catalogue.templates:
        return [
            Problem(
                f"double_opt_in: no template '{optin.TEMPLATE}' to send",
                file=name,
                line=line,
                hint=f"add templates/email/{optin.TEMPLATE}.mjml with {{{{ confirm_url }}}}",
            )
        ]
    used = (catalogue.template_variables or {}).get(optin.TEMPLATE)
    if used is None:  # not compiled: its own problems are reported
        return []
    missing = sorted(used - CONFIRMATION_EMAIL)
    if "confirm_url" not in used or missing:
        return [
            Problem(
                f"double_opt_in: the '{optin.TEMPLATE}' template must show {{{{ confirm_url }}}}"
                + (f" and cannot use {', '.join(missing)}" if missing else ""),
                file=name,
                line=line,
            )
        ]
    return []


def _raw_journeys(campaign: CampaignDef | None, text: str) -> list[tuple[int, dict[str, Any]]]:
    """The journeys as written, by position; read from the text when the campaign part
    is invalid, so that their problems are reported in the same run."""
    if campaign is not None:
        return list(enumerate(campaign.journeys))
    data = yaml.safe_load(text)
    raw = data.get("journeys") if isinstance(data, dict) else None
    if not isinstance(raw, list):
        return []
    return [(index, journey) for index, journey in enumerate(raw) if isinstance(journey, dict)]


def _journey(
    raw: dict[str, Any],
    name: str,
    node: yaml.Node | None,
    where: list[int | str],
    problems: list[Problem],
) -> tuple[Journey | None, frozenset[str]]:
    """The journey; or, after adding its schema errors to `problems`, the journey with
    stand-ins for its invalid parts (None when too little is valid), and the keys whose
    values are stand-ins (`steps` when any step is)."""
    try:
        return Journey.model_validate(raw), frozenset()
    except ValidationError as exc:
        errors = exc.errors()
    locs = [[p for p in error["loc"] if isinstance(p, int | str)] for error in errors]
    for error, loc in zip(errors, locs, strict=True):
        path = where + loc
        field = ".".join(str(p) for p in path)
        problems.append(Problem(f"{field}: {error['msg']}", file=name, line=locate(node, path)))
    broken = frozenset(str(loc[0]) for loc in locs if loc)
    return _with_stand_ins(raw, locs), broken


_ANY_INSTANT = datetime(2026, 1, 5, tzinfo=UTC)

# Stand-ins are checked by nothing: they only keep the valid parts of a journey checkable.
_STAND_IN_TRIGGER = DonatedTrigger.model_construct(donated=True)


def _with_stand_ins(raw: dict[str, Any], locs: list[list[int | str]]) -> Journey | None:
    """`raw` with each invalid step replaced by an exit step of the same id, each other
    invalid key dropped (a default applies) and an invalid trigger by a stand-in."""
    steps = raw.get("steps")
    broken_steps = {loc[1] for loc in locs if len(loc) > 1 and loc[0] == "steps"}
    broken_keys = {loc[0] for loc in locs if loc and not (loc[0] == "steps" and len(loc) > 1)}
    if not isinstance(steps, list) or {"id", "steps"} & broken_keys or not all(locs):
        return None
    repaired = {k: v for k, v in raw.items() if k not in broken_keys}
    if "trigger" in broken_keys:
        repaired["trigger"] = _STAND_IN_TRIGGER
    repaired["steps"] = [
        _stand_in(step, index) if index in broken_steps else step
        for index, step in enumerate(steps)
    ]
    try:
        return Journey.model_validate(repaired)
    except ValidationError:
        return None


def _stand_in(step: object, index: int) -> ExitStep:
    step_id = step.get("id") if isinstance(step, dict) else None
    return ExitStep.model_construct(
        id=step_id if isinstance(step_id, str) else f"#{index}", exit="completed", next=None
    )


@dataclass
class _JourneyCheck:
    """What the schema cannot see. `stand_ins` names the parts of a journey that are
    stand-ins (see `_with_stand_ins`), and `campaign` is None when the campaign part is
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
