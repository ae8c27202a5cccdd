"""Reading the declared files (`journeys/*.yaml`, `segments/*.yaml`, `organisation.yaml`):
the I/O edge of rules.

The rules engine validates text; this module only finds and reads it, so that `validate`,
`sync`, `tick`, the scheduler and the tests load declarations the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import Problem
from engine.rules.campaign_checks import duplicate_petitions, validate_campaign
from engine.rules.campaigns import CampaignDef
from engine.rules.conditions import Condition
from engine.rules.journey_checks import Catalogue
from engine.rules.journeys import Journey
from engine.rules.organisation import FILE as ORGANISATION_FILE
from engine.rules.organisation import OrganisationDef, parse_organisation
from engine.rules.segments import SegmentDef, check_references, parse_segment


@dataclass(frozen=True)
class OrganisationFile:
    definition: OrganisationDef
    path: str
    text: str  # kept to point warnings at their lines


@dataclass
class Declared:
    campaigns: list[CampaignDef] = field(default_factory=list)
    journeys: list[tuple[CampaignDef, Journey]] = field(default_factory=list)
    segments: dict[str, SegmentDef] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    # What `validate` prints without failing: placeholders, images that will not load.
    warnings: list[Problem] = field(default_factory=list)
    organisation: OrganisationFile | None = None

    @property
    def conditions(self) -> dict[str, Condition]:
        return {name: s.where for name, s in self.segments.items()}


def _yaml_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) if path.is_dir() else []


def read_segments(directory: Path, declared: Declared | None = None) -> Declared:
    declared = declared or Declared()
    names: dict[str, str] = {}
    for path in _yaml_files(directory):
        segment, problems = parse_segment(path.read_text(encoding="utf-8"), str(path))
        declared.problems += problems
        if segment is None:
            continue
        if segment.segment in declared.segments:
            declared.problems.append(
                Problem(f"segment '{segment.segment}' is declared twice", file=str(path))
            )
        declared.segments[segment.segment] = segment
        names[segment.segment] = str(path)
    declared.problems += check_references(declared.segments, names)
    return declared


def read_organisation(root: Path) -> tuple[OrganisationFile | None, list[Problem]]:
    """`root/organisation.yaml`, parsed; None (and no problem) when there is no such file."""
    path = root / ORGANISATION_FILE
    if not path.is_file():
        return None, []
    text = path.read_text(encoding="utf-8")
    definition, problems = parse_organisation(text, str(path))
    found = OrganisationFile(definition, str(path), text) if definition is not None else None
    return found, problems


def read(
    root: Path,
    *,
    templates: frozenset[str] | None = None,
    template_variables: Mapping[str, frozenset[str]] | None = None,
    paths: list[Path] | None = None,
) -> Declared:
    """The organisation, segments from `root/segments`, then every campaign file (or just
    `paths`)."""
    declared = read_segments(root / "segments")
    declared.organisation, problems = read_organisation(root)
    declared.problems += problems
    catalogue = Catalogue(
        segments=declared.segments, templates=templates, template_variables=template_variables
    )
    files = [f for p in (paths or [root / "journeys"]) for f in _yaml_files(p)]
    read_campaigns: list[tuple[CampaignDef, str, str]] = []
    for path in files:
        if path.parent.name == "segments":
            continue
        text = path.read_text(encoding="utf-8")
        campaign, journeys, problems = validate_campaign(text, str(path), catalogue)
        declared.problems += problems
        if campaign is not None:
            declared.campaigns.append(campaign)
            declared.journeys += [(campaign, j) for j in journeys]
            read_campaigns.append((campaign, str(path), text))
    declared.problems += duplicate_petitions(read_campaigns)
    return declared
