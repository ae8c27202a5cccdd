"""Validation of campaign files: every mistake as `file:line: message`.

The file is read as far as it is valid (a journey with schema errors keeps its valid
parts, with stand-ins for the rest), its petition checked (double opt-in needs its
template), and each journey handed to engine.rules.journey_checks.

Pure: callers read the files and pass what they know (template names, each template's
variables, the segments) as arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml
from pydantic import ValidationError

from engine.errors import Problem
from engine.rules import optin
from engine.rules.campaigns import CampaignDef
from engine.rules.journey_checks import Catalogue, JourneyCheck
from engine.rules.journeys import DonatedTrigger, ExitStep, Journey
from engine.rules.template_variables import CONFIRMATION_EMAIL
from engine.rules.yaml_lines import compose, load_model, locate


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
        checker = JourneyCheck(
            journey, campaign, petitions, catalogue, name, node, where, stand_ins
        )
        problems += checker.run()
        if not stand_ins:
            journeys.append(journey)
    return campaign, journeys if campaign is not None else [], problems


def duplicate_petitions(files: Sequence[tuple[CampaignDef, str, str]]) -> list[Problem]:
    """One campaign file per petition: each campaign (with its file's name and text, in
    reading order) that declares a petition an earlier one declared, at its slug's line."""
    first: dict[str, str] = {}
    problems = []
    for campaign, name, text in files:
        slug = campaign.petition.slug
        if slug in first:
            node, _ = compose(text, name)
            problems.append(
                Problem(
                    f"petition '{slug}' is declared by campaigns "
                    f"'{first[slug]}' and '{campaign.campaign}'",
                    file=name,
                    line=locate(node, ["petition", "slug"]),
                    hint="one campaign file per petition: give its journeys to the first",
                )
            )
        first.setdefault(slug, campaign.campaign)
    return problems


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
