"""The `mobilise` command from a user's seat: upgrade, sync, import, errors as file:line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.config import get_settings
from tests.store.journey_helpers import copy_declared


@pytest.fixture
def project(tmp_path: Path, project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    copy_declared(tmp_path)
    monkeypatch.setenv("MOBILISE_DATABASE_URL", f"sqlite:///{tmp_path / 'var' / 'm.db'}")
    monkeypatch.setenv("MOBILISE_PROJECT_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_upgrade_sync_and_import_from_a_fresh_directory(project: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    synced = runner.invoke(app, ["sync"])
    assert synced.exit_code == 0, synced.output
    assert "stop-reconnaissance-faciale" in synced.output
    sheet = project / "sheet.csv"
    sheet.write_text("email;prenom\na@example.fr;A\nnope;B\n;Papier\n", encoding="utf-8")

    imported = runner.invoke(
        app, ["import", "signatures", "--petition", "stop-reconnaissance-faciale", str(sheet)]
    )

    assert imported.exit_code == 0, imported.output
    assert "imported 1 / duplicates 0 / paper 1 / rejected 1" in imported.output
    assert (project / "sheet.rejects.csv").exists()


def test_an_invalid_campaign_file_fails_sync_with_file_and_line(project: Path) -> None:
    (project / "journeys" / "broken.yaml").write_text(
        "campaign: x\npetition:\n  slug: Not A Slug\n  title: T\n", encoding="utf-8"
    )
    runner = CliRunner()
    runner.invoke(app, ["db", "upgrade"])

    result = runner.invoke(app, ["sync"])

    assert result.exit_code == 1
    assert "journeys/broken.yaml:3: " in result.output
    assert "petition.slug" in result.output


def test_importing_into_an_unknown_petition_exits_1_with_a_hint(project: Path) -> None:
    runner = CliRunner()
    runner.invoke(app, ["db", "upgrade"])
    sheet = project / "s.csv"
    sheet.write_text("email\na@example.fr\n", encoding="utf-8")

    result = runner.invoke(app, ["import", "signatures", "--petition", "nope", str(sheet)])

    assert result.exit_code == 1
    assert "no petition 'nope'" in result.output
    assert "mobilise sync" in result.output


def test_a_control_character_in_a_header_is_shown_escaped(project: Path) -> None:
    # Given a sheet whose header cell holds an escape sequence (it clears a terminal)
    runner = CliRunner()
    runner.invoke(app, ["db", "upgrade"])
    runner.invoke(app, ["sync"])
    sheet = project / "s.csv"
    sheet.write_text("email,col\x1b[2J\x07\na@example.fr,x\n", encoding="utf-8")

    # When it is imported
    result = runner.invoke(
        app, ["import", "signatures", "--petition", "stop-reconnaissance-faciale", str(sheet)]
    )

    # Then the file is refused naming the column, its control characters escaped
    assert result.exit_code == 1
    assert "unknown column 'col\\x1b[2J\\x07'" in result.output
    assert "\x1b" not in result.output


def test_validate_checks_journeys_against_the_shipped_templates(
    project: Path, project_dir: Path
) -> None:
    runner = CliRunner()

    shipped = runner.invoke(app, ["validate"])
    (project / "templates" / "email" / "update.mjml").write_text(
        (project_dir / "templates" / "email" / "update.mjml")
        .read_text(encoding="utf-8")
        .replace("{{ milestone | number }}", "{{ palier_inconnu }}"),
        encoding="utf-8",
    )
    broken = runner.invoke(app, ["validate"])

    assert shipped.exit_code == 0, shipped.output
    assert broken.exit_code == 1
    assert "palier_inconnu" in broken.output
    assert "stop-reconnaissance-faciale.yaml:" in broken.output


def test_validate_and_sync_report_every_problem_alike_and_sync_stores_nothing(
    project: Path,
) -> None:
    # given a campaign file with three mistakes and two broken templates
    seed = project / "journeys" / "stop-reconnaissance-faciale.yaml"
    seed.write_text(
        seed.read_text(encoding="utf-8")
        .replace("reentry: never", "reentry: sometimes")
        .replace("wait: 3d", "wait: 3 days")
        .replace("goto: ask-additional", "goto: ask-aditional"),
        encoding="utf-8",
    )
    templates = project / "templates" / "email"
    for name, old, new in (
        ("update", "{{ signature_count | number }}", "{{ signature_count | nombre }}"),
        ("confirm", "{{ first_name }}", "{{ prenom }}"),
    ):
        path = templates / f"{name}.mjml"
        path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
    runner = CliRunner()
    runner.invoke(app, ["db", "upgrade"])
    # when the files are validated, then synced
    validated = runner.invoke(app, ["validate"])
    synced = runner.invoke(app, ["sync"])
    # then both exit 1 with the same five lines, each at the line of its mistake
    assert (validated.exit_code, synced.exit_code) == (1, 1)
    assert synced.stderr == validated.stderr
    lines = [line for line in validated.stderr.splitlines() if ": warning: " not in line]
    assert [line.split(": ")[0] for line in lines] == [
        f"{seed}:46",
        f"{seed}:59",
        f"{seed}:64",
        f"{templates / 'confirm.mjml'}:15",
        f"{templates / 'update.mjml'}:2",
    ]
    assert "unknown filter 'nombre'" in lines[4]
    # and sync stored nothing
    assert "petition" not in synced.stdout


def test_importing_a_file_with_an_unknown_consent_column_exits_1_naming_it(
    project: Path,
) -> None:
    runner = CliRunner()
    runner.invoke(app, ["db", "upgrade"])
    runner.invoke(app, ["sync"])
    sheet = project / "s.csv"
    sheet.write_text("email;consent_updates;consent_newsletter\na@example.fr;oui;oui\n")

    result = runner.invoke(
        app, ["import", "signatures", "--petition", "stop-reconnaissance-faciale", str(sheet)]
    )

    assert result.exit_code == 1
    assert f"{sheet}:1: column 'consent_newsletter'" in result.output
    assert "purposes: fundraising, updates" in result.output
    assert "Traceback" not in result.output
