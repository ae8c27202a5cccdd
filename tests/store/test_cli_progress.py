"""Long commands (`sync`, `import signatures`, `import donations`, `simulate`, `gdpr
retention`) show their progress as `mobilise demo` does: bars on stderr on a terminal, and
nothing more than before when redirected, so that scripts read the same streams."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from engine.cli import app
from tests.conftest import BACKENDS

runner = CliRunner()


def commands(folder: Path) -> list[tuple[list[str], list[str], str]]:
    """(arguments, the bars a terminal shows, a line of the usual report) of each command."""
    signatures = folder / "signatures.csv"
    signatures.write_text(
        "email,first_name,consent_updates\n"
        "anne@example.org,Anne,oui\n"
        "bruno@example.org,Bruno,non\n"
        "pas-une-adresse,Carl,oui\n",
        encoding="utf-8",
    )
    gifts = folder / "gifts.csv"
    gifts.write_text(
        "email,amount,donated_at,frequency,external_id\n"
        "anne@example.org,20,2026-05-30,one-off,pay-1\n",
        encoding="utf-8",
    )
    slug = "stop-reconnaissance-faciale"
    return [
        (["sync"], ["Checking the declared files", "Storing petitions, journeys"], "journey "),
        (
            ["import", "signatures", "--petition", slug, str(signatures)],
            ["Importing signatures"],
            "imported 2 / duplicates 0 / paper 0 / rejected 1",
        ),
        (
            ["import", "donations", str(gifts), "--now", "2026-06-01T12:00"],
            ["Importing donations"],
            "imported 1 / duplicates 0 / rejected 0",
        ),
        (
            [*("simulate", slug, "--supporters", "40", "--days", "5")],
            ["Preparing a scratch database", "Running in virtual time"],
            "petition stop-reconnaissance-faciale: 40 signatures",
        ),
        (
            ["gdpr", "retention", "--now", "2031-06-01T10:00"],
            ["Checking retention periods", "Anonymising supporters"],
            "anonymised               1",
        ),
    ]


@dataclass
class Ran:
    args: list[str]
    result: Result
    bars: list[str] = field(default_factory=list)


def run_all(folder: Path, terminal: bool) -> list[Ran]:
    # TTY_COMPATIBLE is how rich is told what stderr is (CliRunner's is never a terminal)
    env = {"TTY_COMPATIBLE": "1" if terminal else "0"}
    ran = []
    for args, bars, report in commands(folder):
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 0, (args, result.output)
        assert report in result.stdout, (args, result.stdout)
        ran.append(Ran(args, result, bars))
    return ran


@pytest.mark.parametrize("project", BACKENDS, indirect=True)
def test_on_a_terminal_each_long_command_draws_its_bars_on_stderr(project: Path) -> None:
    # Given the shipped campaign, a signatures file and a gifts file
    # When each long command runs with stderr on a terminal
    for ran in run_all(project, terminal=True):
        # Then stderr shows each phase's bar, full at the end
        for bar in ran.bars:
            assert bar in ran.result.stderr, (ran.args, ran.result.stderr)
        assert "100 %" in ran.result.stderr
        # And stdout is the report alone
        for bar in ran.bars:
            assert bar not in ran.result.stdout, ran.args


@pytest.mark.parametrize("project", BACKENDS, indirect=True)
def test_redirected_the_commands_write_what_they_always_wrote(project: Path) -> None:
    # Given the same commands with stderr redirected (a script, cron, a log file)
    validated = runner.invoke(app, ["validate"], env={"TTY_COMPATIBLE": "0"})
    # When they run
    ran = run_all(project, terminal=False)
    # Then no bar is drawn: stderr holds only what `validate` warns about, or nothing
    assert ran[0].result.stderr == validated.stderr
    for each in ran[1:]:
        assert each.result.stderr == "", (each.args, each.result.stderr)
