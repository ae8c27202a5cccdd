"""A recipient's email as a skeleton shared with others, plus this recipient's values.

SendGrid takes the content once per request and a dictionary of substitutions per
recipient. Rendering each recipient's whole HTML and factoring it back into a skeleton
costs more than the rendering; here the Jinja template runs as usual (its control flow
is the recipient's), but its output is not joined: the pieces a template yields are
either text of the template itself (constants of its compiled code) or values
computed for this recipient. A piece equal to a constant counts as that constant (a
value that happens to equal one is the same text in the same place: the output does
not change). The constants' positions give the *shape* of the render; one skeleton is
built per shape (usually one or two per template version), with a tag where each run
of values stood, and the values become the substitutions. Values are the very strings
the full render would have joined (HTML-escaped by the same escaper), so the skeleton
with its tags replaced is the full render, byte for byte.

Tags are `¤` and two base-36 digits (`¤00` … `¤zz`): all the same length, so no tag is
a prefix of another, and `¤` (the currency sign) is refused in the skeleton's text and
in every value. A tag then occurs only where the skeleton put it, before, during and
after substitution in any order: no value can reach another tag or form one with its
neighbours. A recipient whose values contain `¤`, or who needs more than 1,296 tags,
gets a full render instead (`None` here).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import compress
from operator import not_
from types import CodeType
from typing import Any

from jinja2 import Template

MARK = "\u00a4"
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
TAGS = tuple(f"{MARK}{a}{b}" for a in _DIGITS for b in _DIGITS)
# Shapes kept per template: a template's control flow gives a few; past this (values
# that coincide in ever new patterns), recipients get a full render.
MAX_SHAPES = 256


class Skeletons:
    """The skeletons of one Jinja template, by the shape of a render."""

    def __init__(self, template: Template, *, also_static: tuple[str, ...] = ()) -> None:
        self.template = template
        # Position 0 is never a text (see `fill`). Keyed by the texts themselves, not
        # their ids: a constant's hash is cached in it and a lookup that finds the very
        # object stops at `is`, twice as fast as making an int of each piece's id.
        self._texts = ["", "", *_constants(template), *also_static]
        self._index = {text: i for i, text in reversed(list(enumerate(self._texts))) if i}
        self._by_shape: dict[tuple[tuple[int | None, ...], tuple[int, ...]], str | None] = {}

    def fill(self, pieces: list[str], distinct: dict[str, int]) -> str | None:
        """The skeleton for one render's `pieces`; its values join `distinct` (value → tag
        number, shared by the fields of one email). None when the render cannot be one.
        """
        # In C: the template's texts by position, None for each value (a recipient's).
        positions = tuple(map(self._index.get, pieces))
        number = distinct.setdefault
        numbers = tuple(
            [number(value, len(distinct)) for value in compress(pieces, map(not_, positions))]
        )
        key = (positions, numbers)
        try:
            return self._by_shape[key]
        except KeyError:
            return self._build(key)

    def _build(self, key: tuple[tuple[int | None, ...], tuple[int, ...]]) -> str | None:
        if len(self._by_shape) >= MAX_SHAPES:
            return None
        positions, numbers = key
        if max(numbers, default=0) >= len(TAGS):
            return None
        tags = iter(numbers)
        text = "".join(self._texts[i] if i is not None else TAGS[next(tags)] for i in positions)
        # Tags are the only place the mark may appear.
        skeleton = text if text.count(MARK) == len(numbers) else None
        self._by_shape[key] = skeleton
        return skeleton


def substitutions(distinct: dict[str, int]) -> dict[str, str] | None:
    """Tag → value, or None when a value contains the mark or tags run out.

    `distinct` numbers its values 0, 1, 2… in the order they were added (`fill` gives
    each new value the next number), so its keys line up with `TAGS`.
    """
    if len(distinct) > len(TAGS) or MARK in "".join(distinct):
        return None
    # Plain strings: an HTML value is escaped already, and a `Markup` carried further
    # would escape whatever a transport joined to it.
    return dict(zip(TAGS, map(str, distinct), strict=False))  # TAGS is the longer


def pieces(template: Template, values: dict[str, Any]) -> list[str]:
    """What the template yields for `values`, not joined (see `compiled._render`)."""
    environment = template.environment
    context = environment.context_class(environment, values, template.name, template.blocks)
    try:
        return list(template.root_render_func(context))
    except Exception:
        environment.handle_exception()
        raise


def _constants(template: Template) -> Iterator[str]:
    """Every string constant of the template's compiled code (root, blocks, macros)."""
    codes: list[CodeType] = [template.root_render_func.__code__]
    codes.extend(block.__code__ for block in template.blocks.values())
    seen: set[int] = set()
    while codes:
        code = codes.pop()
        if id(code) in seen:
            continue
        seen.add(id(code))
        for constant in code.co_consts:
            if isinstance(constant, str):
                yield constant
            elif isinstance(constant, CodeType):
                codes.append(constant)
