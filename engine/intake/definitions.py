"""Reading the declared files (journeys/*.yaml) from disk; parsing stays in engine.rules."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.errors import Invalid, Problem
from engine.rules.campaigns import CampaignDef, parse_campaign


@dataclass(frozen=True)
class CampaignFile:
    path: Path
    campaign: CampaignDef


def campaign_paths(project_dir: Path) -> list[Path]:
    return sorted((project_dir / "journeys").glob("*.y*ml"))


def load_campaigns(paths: list[Path], *, relative_to: Path) -> list[CampaignFile]:
    """Every campaign file, or Invalid listing every problem as `file:line: message`."""
    loaded: list[CampaignFile] = []
    problems: list[Problem] = []
    slugs: dict[str, Path] = {}
    for path in paths:
        name = str(path.relative_to(relative_to)) if path.is_relative_to(relative_to) else str(path)
        campaign, found = parse_campaign(path.read_text(encoding="utf-8"), name)
        problems += found
        if campaign is None:
            continue
        slug = campaign.petition.slug
        if slug in slugs:
            problems.append(
                Problem(
                    f"petition '{slug}' is already declared in {slugs[slug]}", file=name, line=1
                )
            )
            continue
        slugs[slug] = path
        loaded.append(CampaignFile(path, campaign))
    if problems:
        raise Invalid(f"{len(problems)} problem(s) in the declared files", problems=problems)
    return loaded
