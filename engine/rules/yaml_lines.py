"""YAML with line numbers: parse text, validate with pydantic, point errors at `file:line`.

Pure: takes the text and a display name; reading files is the caller's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from engine.errors import Problem

M = TypeVar("M", bound=BaseModel)


class SafeLineLoader(yaml.SafeLoader):
    """A safe loader (no arbitrary objects) that builds plain data."""


def compose(text: str, name: str) -> tuple[yaml.Node | None, list[Problem]]:
    try:
        return yaml.compose(text, Loader=SafeLineLoader), []
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        return None, [Problem(f"YAML syntax: {exc.problem}", file=name, line=line)]


def locate(node: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
    """The line of the deepest key or item that `loc` (a pydantic error path) reaches:
    the one the error is about, else the mapping that lacks it.

    Pydantic puts the tag of a tagged-union member in the path too (`steps.2.send.send.
    template`, `if.all.all.0`): a part that leads nowhere is skipped when the next one
    leads on from the same node.
    """
    line = node.start_mark.line + 1 if node is not None else None
    parts = list(loc)
    for position, key in enumerate(parts):
        found = _child(node, key)
        if found is None:
            following = parts[position + 1] if position + 1 < len(parts) else None
            if following is not None and _child(node, following) is not None:
                continue
            return line
        line, node = found
    return line


def _child(node: yaml.Node | None, key: int | str) -> tuple[int, yaml.Node] | None:
    """The line where `key` is written in `node`, and its value."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if getattr(k, "value", None) == key:
                return k.start_mark.line + 1, v
    elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
        item: yaml.Node = node.value[key]
        return item.start_mark.line + 1, item
    return None


def load_model(
    text: str, name: str, model: type[M]
) -> tuple[M | None, yaml.Node | None, list[Problem]]:
    """Parse and validate; every problem carries `name` and a line."""
    node, problems = compose(text, name)
    if problems:
        return None, None, problems
    data: Any = yaml.load(text, Loader=SafeLineLoader) if node is not None else None
    try:
        return model.model_validate(data if data is not None else {}), node, []
    except ValidationError as exc:
        found = []
        for error in exc.errors():
            loc = [p for p in error["loc"] if isinstance(p, int | str)]
            field = ".".join(str(p) for p in loc) or None
            message = f"{field}: {error['msg']}" if field else error["msg"]
            found.append(Problem(message, file=name, line=locate(node, loc), field=field))
        return None, node, found
