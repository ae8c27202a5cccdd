"""Campaign files: every mistake is reported as file:line."""

from __future__ import annotations

from pathlib import Path

from engine.errors import Problem
from engine.rules.campaigns import CampaignDef
from engine.rules.yaml_lines import load_model


def parse_campaign(text: str, name: str) -> tuple[CampaignDef | None, list[Problem]]:
    """The campaign part of a file, as `validate` reads it before its journeys."""
    campaign, _node, problems = load_model(text, name, CampaignDef)
    return campaign, problems


def test_the_seed_campaign_file_is_valid(project_dir: Path) -> None:
    path = project_dir / "journeys" / "stop-reconnaissance-faciale.yaml"
    campaign, problems = parse_campaign(path.read_text(encoding="utf-8"), path.name)
    assert problems == []
    assert campaign is not None
    assert campaign.petition.slug == "stop-reconnaissance-faciale"
    assert campaign.petition.milestones == [100_000, 140_000, 200_000]
    assert set(campaign.petition.consents) == {"updates", "fundraising"}


def test_a_bad_milestone_points_at_its_line() -> None:
    text = "campaign: c\npetition:\n  slug: ok-slug\n  title: T\n  milestones: [10, -5]\n"
    campaign, problems = parse_campaign(text, "journeys/c.yaml")
    assert campaign is None
    assert [str(p).split(": ")[0] for p in problems] == ["journeys/c.yaml:5"]


def test_unknown_keys_and_yaml_syntax_errors_have_lines() -> None:
    _, unknown = parse_campaign(
        "campaign: c\npetition:\n  slug: a\n  title: T\n  colour: 1\n", "c.yaml"
    )
    _, broken = parse_campaign("campaign: c\npetition: [\n", "c.yaml")
    assert unknown[0].line == 5
    assert "colour" in unknown[0].message
    assert broken[0].line is not None
    assert broken[0].message.startswith("YAML syntax")


def test_double_opt_in_is_a_petition_setting_checked_at_its_line() -> None:
    head = "campaign: c\npetition:\n  slug: ok-slug\n  title: T\n"
    campaign, problems = parse_campaign(
        head + "  double_opt_in: true\n  count_unconfirmed: true\n", "c.yaml"
    )
    assert problems == []
    assert campaign is not None
    assert (campaign.petition.double_opt_in, campaign.petition.count_unconfirmed) == (True, True)
    # Counting unconfirmed signatures without double opt-in means nothing: refused
    _, alone = parse_campaign(head + "  count_unconfirmed: true\n", "c.yaml")
    _, typo = parse_campaign(head + "  double_opt_in: maybe\n", "c.yaml")
    assert [(p.line, "double_opt_in" in p.message) for p in alone] == [(5, True)]
    assert [p.line for p in typo] == [5]
