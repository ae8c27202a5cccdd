"""The Jinja2 sandbox every template runs in, and the static checks made before it.

Sandboxed (no `__class__` walks, no mutating lists), strict (an unknown variable is
an error, not an empty string) and, for HTML, autoescaped: a supporter called
`<script>` or `{{ 7*7 }}` is shown as typed. The text environment does not escape:
in a plain-text part `<` is just a character.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateRuntimeError, nodes, pass_context
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.render import asks, french

# What the renderer provides to every template on top of the caller's context.
PROVIDED = frozenset({"subject", "preheader", "unsubscribe_url", "rights_url", "tax_reduction"})


@pass_context
def _after_tax(context: Context, amount: Decimal | int, reduction: Any = None) -> Decimal:
    rate = reduction if reduction is not None else context.get("tax_reduction")
    return _net(str(amount), None if rate is None else str(rate))


@lru_cache(maxsize=4096)
def _net(amount: str, rate: str | None) -> Decimal:
    # A send formats the same few rungs again and again (engine.render.french).
    reduction = asks.DEFAULT_TAX_REDUCTION if rate is None else Decimal(rate)
    return asks.after_tax(Decimal(amount), reduction)


def _percent(rate: Decimal | float) -> str:
    return f"{french.number(Decimal(str(rate)) * 100)}\u00a0%"


def _money(value: Any, currency: str = "EUR", cents: bool = True) -> str:
    return french.money(value, currency, cents=cents)


FILTERS = {
    "number": french.number,
    "money": _money,
    "date": french.long_date,
    "after_tax": _after_tax,
    "percent": _percent,
}


def _donation_url(*_args: object, **_kwargs: object) -> str:
    # The compiler turns each `href="{{ donation_url(...) }}"` into the link's own
    # function (engine.render.links); anywhere else it cannot make a tracked URL.
    raise TemplateRuntimeError(
        "donation_url(...) makes a link: use it as the whole href of a link or button"
    )


GLOBALS = {"ask_ladder": asks.ask_ladder, "donation_url": _donation_url}


def _blank_none(value: object) -> object:
    return "" if value is None else value


def _environment(*, autoescape: bool) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        autoescape=autoescape,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        # A missing value from the database prints as nothing, never "Bonjour None".
        finalize=_blank_none,
        # `{% set %}` and `{% if %}` on lines of their own leave no blank lines behind.
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    env.globals.update(GLOBALS)
    return env


HTML = _environment(autoescape=True)
TEXT = _environment(autoescape=False)


_UNSAFE_NAMES = frozenset({"mro", "gi_frame", "gi_code", "cr_frame", "f_globals", "func_globals"})
_COMPOSITION = (nodes.Include, nodes.Extends, nodes.Import, nodes.FromImport)


def unsafe_nodes(tree: nodes.Template) -> Iterator[tuple[int, str]]:
    """(line, reason) for each construct the sandbox would refuse or we reserve.

    The sandbox already blocks these at render time; finding them in the syntax tree
    lets `mobilise validate` say where, before any email is sent.
    """
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name, *_COMPOSITION)):
        if isinstance(node, _COMPOSITION):
            yield node.lineno, "templates compose with <mj-include>, not Jinja include/import"
        elif isinstance(node, nodes.Name) and node.name.startswith("_"):
            yield node.lineno, f"names starting with '_' are reserved ({node.name})"
        elif isinstance(node, nodes.Getattr) and _unsafe(node.attr):
            yield node.lineno, f"access to attribute {node.attr!r} is not allowed"
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
            and _unsafe(node.arg.value)
        ):
            yield node.lineno, f"access to attribute {node.arg.value!r} is not allowed"


def unknown_filters(tree: nodes.Template) -> Iterator[tuple[int, str]]:
    """(line, reason) for each filter or test the environments do not have.

    Jinja reports one only when compiling, and one inside `{% if %}` only when a render
    reaches it; the syntax tree has them all, with their lines.
    """
    for node in tree.find_all((nodes.Filter, nodes.Test)):
        if isinstance(node, nodes.Filter) and node.name not in HTML.filters:
            ours = ", ".join(sorted(FILTERS))
            yield node.lineno, f"unknown filter {node.name!r} (Mobilise adds: {ours})"
        elif isinstance(node, nodes.Test) and node.name not in HTML.tests:
            yield node.lineno, f"unknown test {node.name!r}"


def _unsafe(attribute: str) -> bool:
    return attribute.startswith("_") or attribute in _UNSAFE_NAMES
