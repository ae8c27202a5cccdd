"""The docs against the code: every `mobilise …` command line the docs show exists with
the options it is written with, every template variable they list is the engine's, and
every engine file or dotted name they show is in the code."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from engine.cli import app
from engine.render import sandbox
from engine.render.template_checks import validate_templates
from engine.rules.template_variables import CATALOGUE
from tests.unit.render.conftest import mjml

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Code as the docs show it: fenced blocks and `inline` spans.
_FENCED = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_INLINE = re.compile(r"`([^`\n]+)`")
_COMMAND = re.compile(r"(?:^|(?<=[\s/]))mobilise((?:[ \t]+[^\s#]+)*)")
_WORD = re.compile(r"[a-z][a-z-]*")
_OPTION = re.compile(r"--[a-z][a-z-]*")


def _code(text: str) -> list[str]:
    fenced = _FENCED.findall(text)
    prose = _FENCED.sub("", text)
    return [line for block in fenced for line in block.splitlines()] + _INLINE.findall(prose)


def command_lines() -> list[tuple[str, str]]:
    """(where, the words after `mobilise`) of every command line the docs show."""
    found = []
    for path in DOCS:
        for code in _code(path.read_text(encoding="utf-8")):
            for match in _COMMAND.finditer(code):
                words = match.group(1).split()
                if words and _WORD.fullmatch(words[0]):
                    found.append((f"{path.relative_to(ROOT)}: mobilise {' '.join(words)}", code))
    return found


def _resolve(words: list[str]) -> tuple[list[str], Any]:
    """The command the words name (group by group), and the words that name it."""
    command: Any = typer.main.get_command(app)
    path: list[str] = []
    for word in words:
        subcommands = getattr(command, "commands", {})
        if word not in subcommands:
            break
        command = subcommands[word]
        path.append(word)
    return path, command


LINES = command_lines()


def test_the_docs_show_command_lines() -> None:
    # A broken extraction would pass every check below on nothing.
    assert len(LINES) > 30
    assert any(line.startswith("docs/cli.md: mobilise import signatures") for line, _ in LINES)


@pytest.mark.parametrize(("line", "code"), LINES, ids=[line for line, _ in LINES])
def test_each_command_line_runs_with_help_and_has_its_options(line: str, code: str) -> None:
    words = line.split(": mobilise ", 1)[1].split()
    named = [w for w in words if _WORD.fullmatch(w)]
    path, command = _resolve(named)
    # given the command the docs name (a group's next word names one of its commands)
    assert path, f"{line}: no such command"
    group = getattr(command, "commands", None)
    assert group is None or named[len(path) :] == [], f"{line}: no such command in the group"
    # when it is asked for its help, then it answers
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, (line, result.output)
    # and every option written on the line is one of that command's
    known = {name for param in command.params for name in param.opts}
    written = set(_OPTION.findall(" ".join(words))) - {"--help"}
    assert written <= known, f"{line}: unknown options {sorted(written - known)}"


def _section(path: Path, heading: str) -> str:
    text = path.read_text(encoding="utf-8")
    start = text.index(heading)
    following = re.search(r"^#", text[start + len(heading) :], re.MULTILINE)
    return text[start : start + len(heading) + following.start()] if following else text[start:]


def _names(text: str) -> set[str]:
    return {span for span in _INLINE.findall(text) if re.fullmatch(r"[a-z][a-z_]*", span)}


def test_the_variables_the_docs_list_are_the_declared_list() -> None:
    # templates.md's table names the catalogue; journeys.md names it and what the renderer adds
    table = _section(ROOT / "docs" / "templates.md", "### Variables").split("\n\n")[1]
    listed = _names(table)
    assert listed == set(CATALOGUE)
    journeys = _names(_section(ROOT / "docs" / "journeys.md", "## Template variables"))
    assert journeys == set(CATALOGUE) | sandbox.PROVIDED


def test_validate_accepts_every_variable_the_docs_list(tmp_path: Path) -> None:
    # given a template that uses every variable the docs list
    docs = _section(ROOT / "docs" / "templates.md", "### Variables")
    docs += _section(ROOT / "docs" / "journeys.md", "## Template variables")
    uses = "".join(f"{{{{ {name} }}}} " for name in sorted(_names(docs)))
    (tmp_path / "all.mjml").write_text(
        f"---\nsubject: Bonjour\n---\n{mjml(f'<mj-text>{uses}</mj-text>')}", encoding="utf-8"
    )
    # when `validate` checks it, then none is unknown
    assert [str(p) for p in validate_templates(tmp_path)] == []


# Code the docs name: a file (`engine/store/clicks.py`, or within engine/ `store/clicks.py`
# or `store/clicks`) or a dotted name (`engine.send.configured_transport.from_settings`).
_STAGES = "|".join(
    sorted(p.name for p in (ROOT / "engine").iterdir() if (p / "__init__.py").is_file())
)
_FILE = re.compile(
    rf"(?<![\w/.{{-])(?:engine/)?(?:{_STAGES})/[a-z_]+(?:\.py)?\b(?![/.\w{{-])"
    r"|(?<![\w/.])engine/[a-z_]+\.py\b"
)
_DOTTED = re.compile(r"(?<![\w.])engine(?:\.[A-Za-z_]\w*)+")


def named_code() -> list[tuple[str, str]]:
    """(doc, name) of every engine file or dotted name the docs and the bench README show."""
    found = []
    for path in [*DOCS, ROOT / "bench" / "README.md"]:
        text = path.read_text(encoding="utf-8")
        names = {*_FILE.findall(text), *_DOTTED.findall(text)}
        found += [(str(path.relative_to(ROOT)), name) for name in sorted(names)]
    return found


# Logger names the code gives (`logging.getLogger("engine.api.access")`) are names too.
_LOGGERS = {
    name
    for path in (ROOT / "engine").rglob("*.py")
    for name in re.findall(r'getLogger\("([\w.]+)"\)', path.read_text(encoding="utf-8"))
}


def _exists(name: str) -> bool:
    if name in _LOGGERS:
        return True
    if "/" in name:
        path = ROOT / (name if name.startswith("engine/") else f"engine/{name}")
        return path.is_file() if name.endswith(".py") else path.with_suffix(".py").is_file()
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False


NAMED = named_code()


def test_the_docs_name_code() -> None:
    assert any(name == "engine.send.configured_transport.from_settings" for _, name in NAMED)
    assert any(name == "store/deliveries.py" for _, name in NAMED)


@pytest.mark.parametrize(("doc", "name"), NAMED, ids=[f"{d}: {n}" for d, n in NAMED])
def test_every_file_and_name_the_docs_show_is_in_the_code(doc: str, name: str) -> None:
    # given a file or dotted name a doc shows, then the code has it (renames update the docs)
    assert _exists(name), f"{doc} names {name}, which the code does not have"


def test_the_architecture_doc_lists_the_layers_the_contract_checks() -> None:
    # given the layers contract of pyproject.toml, top first
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contract = next(c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers")
    layers = [{m.strip() for m in layer.split("|")} for layer in contract["layers"]]
    # then docs/architecture.md's table has the same folders in the same order
    table = _section(ROOT / "docs" / "architecture.md", "## The folders and what each may import")
    rows = [line for line in table.splitlines() if re.match(r"\| \d+ \|", line)]
    documented = [
        {
            f"engine.{p.removesuffix('.py').replace('/', '.')}"
            for p in re.findall(r"`engine/([\w/.]+)`", row)
        }
        for row in rows
    ]
    assert documented == layers
