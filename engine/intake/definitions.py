"""Checks across the declared campaign files that no single file can make."""

from __future__ import annotations

from collections.abc import Sequence

from engine.errors import Invalid, Problem
from engine.rules.campaigns import CampaignDef


def refuse_duplicate_petitions(campaigns: Sequence[CampaignDef]) -> None:
    """One campaign file per petition: a slug declared twice is refused."""
    seen: dict[str, str] = {}
    problems = []
    for campaign in campaigns:
        slug = campaign.petition.slug
        if slug in seen:
            problems.append(
                Problem(
                    f"petition '{slug}' is declared by campaigns "
                    f"'{seen[slug]}' and '{campaign.campaign}'"
                )
            )
        seen.setdefault(slug, campaign.campaign)
    if problems:
        raise Invalid(problems[0].message, problems=problems)
