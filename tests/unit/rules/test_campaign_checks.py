"""Validation: given a campaign file with a mistake, then the problem names file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from engine.rules.campaign_checks import duplicate_petitions, validate_campaign
from engine.rules.journey_checks import Catalogue
from engine.rules.segments import SegmentDef, check_references, parse_segment

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


def test_a_send_window_inside_quiet_hours_is_refused() -> None:
    # Given quiet hours from 20:00 to 10:00 and a send window from 08:00 to 10:00: no
    # campaign email could ever leave (a pass raised on the first one).
    text = BASE.replace(
        "    steps:\n",
        "    quiet_hours: {start: '20:00', end: '10:00'}\n"
        "    send_window: {days: [mon], start: '08:00', end: '10:00'}\n"
        "    steps:\n",
    ) + ("      - {id: a, send: {template: update, consent: updates}}\n")

    problems = check(text, templates=TEMPLATES)

    assert problems == [
        "c.yaml:12: journey 'j': the send window never opens outside quiet hours"
        " (hint: widen the window or shorten the quiet hours)"
    ]


def test_a_signature_age_needs_a_journey_entered_by_signing() -> None:
    text = BASE.replace("{signed: p}", "{donated: true}") + (
        "      - {id: a, send: {template: thanked, transactional: true, max_signature_age: 30d}}\n"
    )

    problems = check(text, templates=TEMPLATES)

    assert any(
        p.startswith("c.yaml:12: journey 'j': `max_signature_age` needs a journey entered by")
        for p in problems
    ), problems


def test_every_problem_of_a_file_comes_in_one_run_at_its_own_line() -> None:
    # given a campaign file with three different mistakes: a petition field, a step
    # field under a tagged step kind, and a branch target
    text = """campaign: c
petition:
  slug: Not A Slug
  title: P
  milestones: [10]
  consents:
    updates: {version: v1, wording: w}
journeys:
  - id: j
    trigger: {signed: p}
    steps:
      - id: a
        send:
          template: thanked
          consent: updates
          transactional: maybe
      - id: b
        branch:
          cases:
            - if: {segment: donors}
              goto: nowhere
          else: exit
"""
    # when it is validated
    problems = check(text, templates=TEMPLATES)
    # then each is reported, at the line of the key it is about
    assert [p.split(": ")[0] for p in problems] == ["c.yaml:3", "c.yaml:16", "c.yaml:21"]
    assert "petition.slug: Value error" in problems[0]
    assert (
        "journeys.0.steps.0.send.send.transactional: Input should be a valid boolean"
        in (problems[1])
    )
    assert problems[2] == "c.yaml:21: journey 'j': step 'b' leads to unknown step 'nowhere'"


def test_a_bad_target_is_reported_at_the_line_of_its_key() -> None:
    steps = """      - id: a
        wait_until:
          milestone: 10
          timeout: 2d
          on_timeout: nowhere-1
      - id: b
        branch:
          cases:
            - if: {segment: donors}
              goto: nowhere-2
          else: nowhere-3
      - id: c
        wait: 1d
        next: nowhere-4
"""
    problems = check(BASE + steps, templates=TEMPLATES)

    assert problems == [
        "c.yaml:16: journey 'j': step 'a' leads to unknown step 'nowhere-1'",
        "c.yaml:21: journey 'j': step 'b' leads to unknown step 'nowhere-2'",
        "c.yaml:22: journey 'j': step 'b' leads to unknown step 'nowhere-3'",
        "c.yaml:25: journey 'j': step 'c' leads to unknown step 'nowhere-4'",
    ]


def test_a_journey_with_a_schema_error_still_has_its_other_steps_checked() -> None:
    # given a journey whose first step is invalid and whose second names an unknown
    # template and consent
    steps = """      - {id: a, wait: 3 days}
      - {id: b, send: {template: nope, consent: dons}}
      - {id: c, wait: 1d, next: a}
"""
    problems = check(BASE + steps, templates=TEMPLATES)

    # then the schema error and both of the other step's problems come together, and
    # the invalid step's id still counts as a known target (no false "unknown step a")
    assert [p.split(": journey")[0].split(": journeys")[0] for p in problems] == [
        "c.yaml:12",
        "c.yaml:13",
        "c.yaml:13",
    ]
    assert "unknown consent purpose 'dons'" in problems[1]
    assert "unknown template 'nope'" in problems[2]


def test_a_double_opt_in_petition_needs_a_confirm_template_showing_its_link() -> None:
    text = SEED.read_text().replace(
        "  milestones: [100000, 140000, 200000]\n",
        "  milestones: [100000, 140000, 200000]\n  double_opt_in: true\n",
    )
    line = text.splitlines().index("  double_opt_in: true") + 1
    given = TEMPLATES | {"confirm"}

    assert check(text, templates=given, template_variables={"confirm": {"confirm_url"}}) == []
    assert check(text, templates=TEMPLATES) == [
        f"c.yaml:{line}: double_opt_in: no template 'confirm' to send"
        " (hint: add templates/email/confirm.mjml with {{ confirm_url }})"
    ]
    assert check(text, templates=given, template_variables={"confirm": {"first_name"}}) == [
        f"c.yaml:{line}: double_opt_in: the 'confirm' template must show {{{{ confirm_url }}}}"
    ]


def test_a_petition_declared_by_a_second_campaign_is_reported_at_its_slug() -> None:
    # Given three campaign files, the third declaring the first one's petition again
    first = BASE.replace("campaign: c", "campaign: first")
    other = BASE.replace("campaign: c", "campaign: other").replace("slug: p", "slug: q")
    again = BASE.replace("campaign: c", "campaign: again")
    files = []
    for name, text in (("a.yaml", first), ("b.yaml", other), ("c.yaml", again)):
        campaign, _, _ = validate_campaign(text, name, Catalogue(segments()))
        assert campaign is not None
        files.append((campaign, name, text))

    # When they are checked together
    problems = duplicate_petitions(files)

    # Then the third is reported at its slug's line, naming both campaigns
    assert [str(p) for p in problems] == [
        "c.yaml:3: petition 'p' is declared by campaigns 'first' and 'again'"
        " (hint: one campaign file per petition: give its journeys to the first)"
    ]
