"""`mobilise --help` as a user reads it."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from engine.cli import app


def _listed(group: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str, Any]]:
    """(group's words, name, command) of every command a `--help` lists, groups included."""
    found = []
    for name, command in sorted(group.commands.items()):
        found.append((path, name, command))
        if hasattr(command, "commands"):
            found += _listed(command, (*path, name))
    return found


LISTED = _listed(typer.main.get_command(app))


def _plain(text: str) -> str:
    """The help's words, its box drawing and blanks aside."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


@pytest.mark.parametrize(
    ("path", "name", "command"), LISTED, ids=[" ".join((*p, n)) for p, n, _ in LISTED]
)
def test_each_commands_summary_reads_as_one_flowing_text(
    path: tuple[str, ...], name: str, command: Any
) -> None:
    # Given a command whose docstring is wrapped at the code's width
    summary = " ".join((command.help or "").split("\n\n")[0].split()).replace("`", "")

    # When its group's commands are listed in a wide terminal
    shown = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "400"}).output

    # Then its summary is there as one line of text, not broken where the source was
    line = next(row for row in shown.splitlines() if _plain(row).startswith(f"{name} "))
    assert _plain(line) == f"{name} {summary}"
