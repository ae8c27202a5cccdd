"""Checks of a template's Jinja, with line numbers, and the variables it reads.

Subject, preheader and body are parsed in the sandbox's environment: syntax errors,
unsafe constructs and unknown filters or tests are reported where they are
(engine/render/sandbox.py decides what is unsafe). MJML's structure is
engine/render/mjml_check.py.
"""

from __future__ import annotations

from collections.abc import Callable

from jinja2 import TemplateSyntaxError, meta, nodes

from engine.errors import Problem
from engine.render import sandbox
from engine.render.sources import TemplateSource


def used_variables(trees: list[nodes.Template]) -> frozenset[str]:
    """The context variables the parsed parts of a template read (the renderer provides
    `sandbox.PROVIDED` and the globals itself)."""
    used: set[str] = set()
    for tree in trees:
        try:
            used |= meta.find_undeclared_variables(tree)
        except TemplateSyntaxError:
            # An unknown filter or test stops Jinja's analysis (`check_jinja` reports it):
            # the names read and never set are the variables, as near as it matters.
            names = list(tree.find_all(nodes.Name))
            stored = {n.name for n in names if n.ctx != "load"}
            used |= {n.name for n in names if n.ctx == "load"} - stored
    return frozenset(used - sandbox.PROVIDED - set(sandbox.GLOBALS))


def check_jinja(source: TemplateSource) -> tuple[list[nodes.Template], list[Problem]]:
    """Parse subject, preheader and body: the trees of the parts that parse, and every
    syntax error, unsafe construct and unknown filter or test, with its line."""
    problems: list[Problem] = []

    def front(key: str) -> Callable[[int], tuple[str, int]]:
        return lambda _line: source.keys.get(key, (source.path, 1))

    parts = [
        (source.subject, front("subject")),
        (source.preheader, front("preheader")),
        (source.mjml, source.origin),
    ]
    trees: list[nodes.Template] = []
    for text, locate in parts:
        try:
            tree = sandbox.HTML.parse(text)
        except TemplateSyntaxError as exc:
            file, line = locate(exc.lineno)
            problems.append(Problem(f"Jinja: {exc.message}", file=file, line=line))
            continue
        for line, reason in (*sandbox.unsafe_nodes(tree), *sandbox.unknown_filters(tree)):
            file, at = locate(line)
            problems.append(Problem(reason, file=file, line=at))
        trees.append(tree)
    return trees, problems
