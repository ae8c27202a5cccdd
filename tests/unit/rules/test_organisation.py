"""organisation.yaml: parsed with lines, and the placeholders left from the example found."""

from __future__ import annotations

from pathlib import Path

from engine.rules.organisation import parse_organisation, placeholder, placeholders

OWN = """\
name: Collectif Visages Libres
address: 3 place de la République, 35000 Rennes
sender:
  name: Visages Libres
  email: petitions@visages-libres.fr
privacy:
  contact: dpo@visages-libres.fr
donation_url: https://dons.visages-libres.fr/
"""


def test_the_shipped_file_parses_and_every_example_value_is_a_warning_at_its_line(
    project_dir: Path,
) -> None:
    # Given the organisation file shipped with the seed campaign
    text = (project_dir / "organisation.yaml").read_text(encoding="utf-8")

    # When it is parsed and checked for placeholders
    organisation, problems = parse_organisation(text, "organisation.yaml")
    assert organisation is not None
    assert problems == []
    found = placeholders(organisation, text, "organisation.yaml")

    # Then each value left from the example is named at its own line
    lines = text.splitlines()
    assert {p.field for p in found} >= {"address", "sender.email", "donation_url"}
    for problem in found:
        assert problem.line is not None
        assert problem.field is not None
        key = problem.field.rpartition(".")[2]
        assert lines[problem.line - 1].strip().startswith(f"{key}:")


def test_an_organisation_of_its_own_has_no_placeholder() -> None:
    organisation, problems = parse_organisation(OWN, "organisation.yaml")

    assert problems == []
    assert organisation is not None
    assert placeholders(organisation, OWN, "organisation.yaml") == []
    assert organisation.flat()["sender.email"] == "petitions@visages-libres.fr"


def test_a_value_the_environment_overrides_is_not_reported() -> None:
    text = OWN.replace("petitions@visages-libres.fr", "petitions@example.com")
    organisation, _ = parse_organisation(text, "organisation.yaml")
    assert organisation is not None

    assert [p.field for p in placeholders(organisation, text, "o.yaml")] == ["sender.email"]
    assert placeholders(organisation, text, "o.yaml", overridden=frozenset({"sender.email"})) == []


def test_mistakes_are_errors_with_file_line_and_field() -> None:
    text = OWN.replace("petitions@visages-libres.fr", "petitions").replace(
        "https://dons.visages-libres.fr/", "dons.visages-libres.fr"
    )

    _, problems = parse_organisation(text + "colour: red\n", "organisation.yaml")

    where = {(p.field, p.line) for p in problems}
    assert where == {("sender.email", 5), ("donation_url", 8), ("colour", 9)}
    assert all(str(p).startswith(f"organisation.yaml:{p.line}: ") for p in problems)


def test_a_value_with_braces_is_refused_as_templates_read_it() -> None:
    text = OWN.replace("name: Collectif Visages Libres", 'name: "Les {{ 7*7 }} visages"')

    _, problems = parse_organisation(text, "o.yaml")

    assert [p.field for p in problems] == ["name"]


def test_what_counts_as_a_placeholder() -> None:
    assert placeholder("https://www.example.org/dons") is not None
    assert placeholder("campagnes@example.com") is not None
    assert placeholder("https://dons.example/") is not None
    assert placeholder("12 rue de l'Exemple") is not None
    assert placeholder("https://www.exemplaire.fr/") is None
    assert placeholder("contact@counterexample.org") is None
    assert placeholder("https://visages-libres.fr/") is None
