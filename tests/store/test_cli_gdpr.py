"""`mobilise gdpr …` on SQLite and PostgreSQL: each right from the command line, logged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import app
from engine.store import audit
from tests.conftest import BACKENDS
from tests.store.cli_helpers import project_session, runner, signed_up


@pytest.mark.parametrize("project", BACKENDS, indirect=True)
def test_each_right_from_the_command_line(project: Path) -> None:
    carol = signed_up(project, {"carol": (True, False)})["carol"]
    # Carol is thanked: the file transport keeps a copy
    assert runner.invoke(app, ["tick", "--now", "2026-05-13T11:30:00"]).exit_code == 0
    assert len(list((project / "var" / "outbox").glob("*.eml"))) == 1

    exported = runner.invoke(app, ["gdpr", "export", "Carol@Example.org"])
    assert exported.exit_code == 0, exported.output
    data = json.loads(exported.stdout)
    assert data["supporter"]["email"] == "carol@example.org"
    assert [e["step"] for e in data["emails"]] == ["thanked"]

    fixed = runner.invoke(app, ["gdpr", "rectify", "carol@example.org", "--last-name", " Dupont"])
    assert fixed.exit_code == 0, fixed.output
    assert runner.invoke(app, ["gdpr", "rectify", "carol@example.org"]).exit_code == 1

    restricted = runner.invoke(app, ["gdpr", "restrict", "carol@example.org"])
    assert "restricted" in restricted.output
    lifted = runner.invoke(app, ["gdpr", "restrict", "carol@example.org", "--lift"])
    assert "restriction lifted" in lifted.output

    # Four years on, the retention pass would anonymise her: the dry run only says so
    dry = runner.invoke(app, ["gdpr", "retention", "--dry-run", "--now", "2030-06-01T10:00"])
    assert dry.exit_code == 0, dry.output
    assert "would anonymise          1" in dry.output
    assert runner.invoke(app, ["gdpr", "export", "carol@example.org"]).exit_code == 0

    erased = runner.invoke(app, ["gdpr", "erase", "carol@example.org", "--yes"])
    assert erased.exit_code == 0, erased.output
    assert "1 .eml" in erased.output
    assert list((project / "var" / "outbox").glob("*.eml")) == []
    gone = runner.invoke(app, ["gdpr", "export", "carol@example.org"])
    assert gone.exit_code == 1
    assert "no supporter with that address" in gone.output

    logged = runner.invoke(app, ["gdpr", "log"])
    assert f"cli          erase supporter {carol}" in logged.output
    # And her own log is still found by her address, through the hash its erasure kept
    hers = runner.invoke(app, ["gdpr", "log", "Carol@example.org"])
    assert hers.exit_code == 0, hers.output
    assert f"erase supporter {carol}" in hers.output
    assert "carol@example.org" not in hers.output.lower()
    nobody = runner.invoke(app, ["gdpr", "log", "nobody@example.org"])
    assert nobody.exit_code == 1
    assert "no supporter with that address" in nobody.output
    with project_session() as session:
        assert [e.action for e in audit.entries(session, supporter_id=carol)] == [
            "export", "rectify", "restrict", "lift-restriction", "export", "erase",
        ]  # fmt: skip


def test_tick_runs_the_retention_pass(project: Path) -> None:
    signed_up(project, {"dan": (False, False)})

    ticked = runner.invoke(app, ["tick", "--now", "2029-05-14T11:30:00"])

    assert ticked.exit_code == 0, ticked.output
    assert "anonymised 1 (retention period over)" in ticked.output
    assert "dan@example.org" not in runner.invoke(app, ["gdpr", "log"]).output
