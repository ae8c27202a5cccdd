"""validate_templates: every problem of a directory, as file:line: message."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import NotFound
from engine.render.sources import load_source
from engine.render.template_checks import validate_templates
from tests.unit.render.conftest import mjml


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def messages(directory: Path) -> list[str]:
    return [str(p) for p in validate_templates(directory)]


def test_a_clean_directory_has_no_problems(tmp_path: Path) -> None:
    write(tmp_path, "ok.mjml", f"---\nsubject: Bonjour\n---\n{mjml('<mj-text>x</mj-text>')}")
    assert messages(tmp_path) == []


def test_unknown_variables_are_reported_where_used(tmp_path: Path) -> None:
    body = "<mj-text>\n{{ first_name }} {{ shoe_size }}\n</mj-text>"
    path = write(tmp_path, "t.mjml", f"---\nsubject: 'Hi {{{{ nickname }}}}'\n---\n{mjml(body)}")
    found = messages(tmp_path)
    assert f"{path}:2: unknown variable 'nickname'" in found[0]
    assert f"{path}:10: unknown variable 'shoe_size'" in found[1]
    assert len(found) == 2


def test_problems_in_partials_point_at_the_partial(tmp_path: Path) -> None:
    partial = write(tmp_path, "partials/footer.mjml", '<mj-text>\n<img src="x.png">\n</mj-text>\n')
    body = '<mj-text>x</mj-text>\n<mj-include path="partials/footer.mjml" />'
    write(tmp_path, "t.mjml", f"---\nsubject: Bonjour\n---\n{mjml(body)}")
    assert any(m.startswith(f"{partial}:2: <img> needs an alt text") for m in messages(tmp_path))


def test_includes_cannot_leave_the_directory(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    write(tmp_path, "secret.mjml", "<mj-text>secret</mj-text>")
    body = '<mj-include path="../secret.mjml" />'
    path = write(templates, "t.mjml", f"---\nsubject: Bonjour\n---\n{mjml(body)}")
    assert f"{path}:9: cannot include '../secret.mjml'" in messages(templates)


def test_front_matter_problems(tmp_path: Path) -> None:
    write(tmp_path, "a.mjml", mjml("<mj-text>x</mj-text>"))
    write(tmp_path, "b.mjml", f"---\nsubjet: Oops\n---\n{mjml('<mj-text>x</mj-text>')}")
    write(tmp_path, "c.mjml", f"---\nsubject: [unclosed\n---\n{mjml('<mj-text>x</mj-text>')}")
    found = "\n".join(messages(tmp_path))
    assert "a.mjml:1: a template starts with `---` front matter" in found
    assert "b.mjml:2: unknown front matter key 'subjet'" in found
    assert "b.mjml:1: front matter needs a non-empty `subject`" in found
    assert "c.mjml:" in found
    assert "front matter:" in found


def test_a_render_failure_with_sample_data_is_reported(tmp_path: Path) -> None:
    # `number` on a name is a type error only a render shows
    body = "<mj-text>{{ first_name | number }}</mj-text>"
    path = write(tmp_path, "t.mjml", f"---\nsubject: Bonjour\n---\n{mjml(body)}")
    [problem] = messages(tmp_path)
    assert problem.startswith(f"{path}: rendering with sample data fails")


def test_html_over_102_kb_is_reported(tmp_path: Path) -> None:
    body = "<mj-text>" + "Un texte bien trop long. " * 5000 + "</mj-text>"
    path = write(tmp_path, "big.mjml", f"---\nsubject: Bonjour\n---\n{mjml(body)}")
    [problem] = messages(tmp_path)
    assert problem.startswith(f"{path}: HTML is ")
    assert "Gmail clips" in problem


def test_a_missing_directory_is_one_problem(tmp_path: Path) -> None:
    assert messages(tmp_path / "nope") == [f"no templates directory {tmp_path / 'nope'}"]


def test_a_template_name_is_never_a_path(tmp_path: Path) -> None:
    write(tmp_path, "secret.mjml", "---\nsubject: x\n---\n")
    (tmp_path / "templates").mkdir()
    with pytest.raises(NotFound):
        load_source(tmp_path / "templates", "../secret")


def test_a_template_that_fails_without_a_gift_is_reported(tmp_path: Path) -> None:
    # `money` on a missing last gift only fails for supporters who never gave
    body = "<mj-text>{{ last_gift | money }}</mj-text>"
    path = write(tmp_path, "t.mjml", f"---\nsubject: Bonjour\n---\n{mjml(body)}")
    [problem] = messages(tmp_path)
    assert problem.startswith(f"{path}: rendering with no name and no gift fails")


def test_two_broken_templates_give_two_problems_in_one_run(tmp_path: Path) -> None:
    # given a template with a filter Jinja only checks when compiling, and another with
    # an unknown variable
    first = write(
        tmp_path,
        "a.mjml",
        f"---\nsubject: Bonjour\n---\n{mjml('<mj-text>{{ 3 | nombre }}</mj-text>')}",
    )
    second = write(
        tmp_path, "b.mjml", f"---\nsubject: Bonjour\n---\n{mjml('<mj-text>{{ prenom }}</mj-text>')}"
    )
    # when the directory is validated, then each is reported at its line
    found = messages(tmp_path)
    assert len(found) == 2, found
    assert found[0].startswith(f"{first}:9: unknown filter 'nombre'")
    assert found[1].startswith(f"{second}:9: unknown variable 'prenom'")


def test_every_problem_of_one_template_comes_in_one_run(tmp_path: Path) -> None:
    # given an unknown tag (MJML), an unknown filter met only by some renders (inside an
    # `if`) and an unknown variable, on three lines
    body = (
        "<mj-bogus>x</mj-bogus>\n"
        "<mj-text>{% if first_name %}{{ first_name | capitalise }}{% endif %}</mj-text>\n"
        "<mj-text>{{ palier }}</mj-text>"
    )
    path = write(tmp_path, "t.mjml", f"---\nsubject: Bonjour\n---\n{mjml(body)}")
    # then all three are reported, each at its own line
    found = messages(tmp_path)
    assert len(found) == 3, found
    assert {p.split(" (")[0] for p in found} == {
        f"{path}:9: unknown MJML tag <mj-bogus>",
        f"{path}:10: unknown filter 'capitalise'",
        f"{path}:11: unknown variable 'palier'",
    }
