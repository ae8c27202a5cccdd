"""Validation: given a campaign file with a mistake, then the problem names file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from engine.rules.segments import SegmentDef, check_references, parse_segment
from engine.rules.validate import Catalogue, validate_campaign

ROOT = Path(__file__).resolve().parents[3]
SEED = ROOT / "journeys" / "stop-reconnaissance-faciale.yaml"
TEMPLATES = frozenset({"thanked", "update", "ask-additional", "ask-first"})


def segments() -> dict[str, SegmentDef]:
    found = {}
    for path in sorted((ROOT / "segments").glob("*.yaml")):
        segment, problems = parse_segment(path.read_text(), path.name)
        assert segment is not None
        assert problems == []
        found[segment.segment] = segment
    return found


def check(text: str, **catalogue: object) -> list[str]:
    _, _, problems = validate_campaign(
        text,
        "c.yaml",
        Catalogue(segments(), **catalogue),  # type: ignore[arg-type]
    )
    return [str(p) for p in problems]


def test_the_seed_campaign_is_valid() -> None:
    assert check(SEED.read_text(), templates=TEMPLATES) == []


def test_seed_segments_reference_each_other_soundly() -> None:
    found = segments()
    assert check_references(found, {k: k for k in found}) == []


BASE = """campaign: c
petition:
  slug: p
  title: P
  milestones: [10]
  consents:
    updates: {version: v1, wording: w}
journeys:
  - id: j
    trigger: {signed: p}
    steps:
"""


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        (
            "      - {id: a, send: {template: nope, consent: updates}}\n",
            "c.yaml:12: journey 'j': unknown template 'nope'",
        ),
        (
            "      - {id: a, send: {template: thanked}}\n",
            "c.yaml:12: journey 'j': step 'a' is a campaign email without a consent purpose",
        ),
        (
            "      - {id: a, wait: 3 days}\n",
            "c.yaml:12: journeys.0.steps.0.wait.wait: Value error, bad duration '3 days'",
        ),
        (
            "      - {id: a, wait: 1d, next: b}\n      - {id: b, wait: 1d, next: a}\n",
            "c.yaml:13: journey 'j': steps loop: a -> b -> a",
        ),
        (
            "      - {id: a, wait: 1d, next: exit}\n      - {id: b, wait: 1d}\n",
            "c.yaml:13: journey 'j': step 'b' is unreachable",
        ),
        (
            "      - {id: a, branch: {cases: [{if: {segment: ghosts}, goto: exit}], else: exit}}\n",
            "c.yaml:12: journey 'j': unknown segment 'ghosts'",
        ),
        (
            "      - {id: a, wait_until: {milestone: 20, timeout: 2d}}\n",
            "c.yaml:12: journey 'j': 20 is not a milestone of 'p'",
        ),
        (
            "      - {id: a, send: {template: thanked, consent: fundraising}}\n",
            "c.yaml:12: journey 'j': unknown consent purpose 'fundraising'",
        ),
    ],
)
def test_a_mistake_is_reported_with_its_line(steps: str, expected: str) -> None:
    problems = check(BASE + steps, templates=TEMPLATES)

    assert any(p.startswith(expected) for p in problems), problems


def test_an_unknown_petition_in_the_trigger_is_reported() -> None:
    text = BASE.replace("{signed: p}", "{signed: q}") + "      - {id: a, wait: 1d}\n"

    assert check(text) == ["c.yaml:10: journey 'j': unknown petition 'q'"]


def test_donor_variables_are_refused_where_non_donors_arrive() -> None:
    data = yaml.safe_load(SEED.read_text())
    variables = {"ask-first": frozenset({"last_gift"}), "ask-additional": frozenset({"last_gift"})}

    problems = check(yaml.safe_dump(data), templates=TEMPLATES, template_variables=variables)

    assert len(problems) == 1
    assert "template 'ask-first' uses last_gift, which step 'ask-first' cannot" in problems[0]


def test_a_signature_age_needs_a_journey_entered_by_signing() -> None:
    text = BASE.replace("{signed: p}", "{donated: true}") + (
        "      - {id: a, send: {template: thanked, transactional: true, max_signature_age: 30d}}\n"
    )

    problems = check(text, templates=TEMPLATES)

    assert any(
        p.startswith("c.yaml:12: journey 'j': `max_signature_age` needs a journey entered by")
        for p in problems
    ), problems
