"""Template sources: front matter, `<mj-include>` expansion, and the version hash.

A template is `templates/email/<name>.mjml`: YAML front matter between `---` lines
(subject, preheader, transactional, tax_reduction), then MJML. Partials are included
with `<mj-include path="partials/x.mjml" />` on a line of its own, resolved here
rather than by mjml-python: it cannot include into `<mj-head>`, its includes would
escape the Jinja placeholders, and the version hash must change when a partial does.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import yaml

from engine.errors import Invalid, NotFound, Problem
from engine.render.asks import DEFAULT_TAX_REDUCTION

_INCLUDE = re.compile(r'^\s*<mj-include\s+path="(?P<path>[^"]+)"\s*/>\s*$')
# A file stem of at most 100 characters (longer ones make the file system raise).
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
_FRONT_KEYS = {"subject", "preheader", "transactional", "tax_reduction"}

Origin = tuple[str, int]


@dataclass(frozen=True)
class TemplateSource:
    """A template with its partials expanded; `version` identifies it (content hash)."""

    name: str
    path: str
    subject: str
    preheader: str
    transactional: bool
    tax_reduction: Decimal
    mjml: str
    # (file, line) of each line of `mjml`, so problems point at what the author wrote.
    origins: tuple[Origin, ...]
    # (file, line) of each front-matter key.
    keys: dict[str, Origin]
    version: str

    def origin(self, line: int) -> Origin:
        """Where line `line` (1-based) of the expanded MJML was written."""
        if 1 <= line <= len(self.origins):
            return self.origins[line - 1]
        return (self.path, line)

    def problem(self, message: str, line: int, *, hint: str | None = None) -> Problem:
        file, at = self.origin(line)
        return Problem(message, file=file, line=at, hint=hint)


def load_source(directory: Path, name: str) -> TemplateSource:
    """Read `<directory>/<name>.mjml`; raise Invalid with every problem found."""
    path = directory / f"{name}.mjml"
    # A name is a file stem, never a path: the dashboard passes names from requests.
    if not _NAME.match(name) or not path.is_file():
        raise NotFound(f"no template {name!r} in {directory}", hint="see docs/templates.md")
    return parse_source(path.read_text(encoding="utf-8"), name=name, path=str(path), root=directory)


def parse_source(text: str, *, name: str, path: str, root: Path | None = None) -> TemplateSource:
    """Parse a template's text; `root` is where `<mj-include>` paths are resolved."""
    problems: list[Problem] = []
    front, body_start, keys = _front_matter(text, path, problems)
    lines: list[str] = []
    origins: list[Origin] = []
    body = text.splitlines()[body_start:]
    _expand(body, path, body_start + 1, root, (path,), lines, origins, problems)
    subject = front.get("subject")
    if not isinstance(subject, str) or not subject.strip():
        problems.append(Problem("front matter needs a non-empty `subject`", file=path, line=1))
        subject = ""
    preheader = front.get("preheader", "")
    if not isinstance(preheader, str):
        problems.append(Problem("`preheader` must be text", file=path, line=1))
        preheader = ""
    transactional = front.get("transactional", False)
    if not isinstance(transactional, bool):
        problems.append(Problem("`transactional` must be true or false", file=path, line=1))
        transactional = False
    reduction = _reduction(front.get("tax_reduction", DEFAULT_TAX_REDUCTION), path, problems)
    if problems:
        raise Invalid(f"template {name!r} is invalid", problems=problems)
    mjml = "\n".join(lines) + "\n"
    canonical = json.dumps([subject, preheader, transactional, str(reduction), mjml])
    return TemplateSource(
        name=name,
        path=path,
        subject=subject,
        preheader=preheader,
        transactional=transactional,
        tax_reduction=reduction,
        mjml=mjml,
        origins=tuple(origins),
        keys=keys,
        version=hashlib.sha256(canonical.encode()).hexdigest(),
    )


def _front_matter(
    text: str, path: str, problems: list[Problem]
) -> tuple[dict[str, object], int, dict[str, Origin]]:
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        problems.append(Problem("a template starts with `---` front matter", file=path, line=1))
        return {}, 0, {}
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        problems.append(Problem("front matter is not closed by `---`", file=path, line=1))
        return {}, 0, {}
    try:
        data = yaml.safe_load("\n".join(lines[1:end])) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        problems.append(Problem(f"front matter: {exc}", file=path, line=line))
        return {}, end + 1, {}
    if not isinstance(data, dict):
        problems.append(Problem("front matter must be a mapping", file=path, line=2))
        return {}, end + 1, {}
    keys: dict[str, Origin] = {}
    for index in range(1, end):
        key = lines[index].split(":", 1)[0].strip()
        if key in data and key not in keys:
            keys[key] = (path, index + 1)
    for key in sorted(set(data) - _FRONT_KEYS):
        line = keys.get(str(key), (path, 1))[1]
        known = ", ".join(sorted(_FRONT_KEYS))
        problems.append(Problem(f"unknown front matter key {key!r} (known: {known})", path, line))
    return {str(k): v for k, v in data.items()}, end + 1, keys


def _reduction(value: object, path: str, problems: list[Problem]) -> Decimal:
    try:
        reduction = Decimal(str(value))
    except InvalidOperation:
        reduction = Decimal(-1)
    if not Decimal(0) <= reduction <= Decimal(1):
        problems.append(Problem("`tax_reduction` must be between 0 and 1 (0.66 = 66 %)", path))
        return DEFAULT_TAX_REDUCTION
    return reduction


def _expand(
    lines: list[str],
    file: str,
    first_line: int,
    root: Path | None,
    stack: tuple[str, ...],
    out: list[str],
    origins: list[Origin],
    problems: list[Problem],
) -> None:
    for offset, line in enumerate(lines):
        here = first_line + offset
        match = _INCLUDE.match(line)
        if match is None:
            out.append(line)
            origins.append((file, here))
            continue
        target = _resolve(match["path"], root)
        if target is None:
            problems.append(Problem(f"cannot include {match['path']!r}", file, here))
        elif str(target) in stack:
            problems.append(Problem(f"{match['path']!r} includes itself", file, here))
        else:
            body = target.read_text(encoding="utf-8").splitlines()
            stack_here = (*stack, str(target))
            _expand(body, str(target), 1, root, stack_here, out, origins, problems)


def _resolve(relative: str, root: Path | None) -> Path | None:
    """The partial's path, only inside the templates directory (no `../` escapes)."""
    if root is None:
        return None
    base = root.resolve()
    target = (base / relative).resolve()
    if not target.is_relative_to(base) or not target.is_file():
        return None
    return target
