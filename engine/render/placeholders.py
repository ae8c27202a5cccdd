"""Keep Jinja constructs intact through MJML and html2text.

mjml-python escapes `>` inside `{% if a > b %}`, html2text escapes Markdown
characters such as `_` in `{{ first_name }}`, and both would mangle quotes inside an
attribute. So each construct is swapped for an inert alphanumeric placeholder before
compilation and swapped back after: the compiled HTML is then a Jinja template whose
expressions are byte-for-byte what the author wrote.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_CONSTRUCT = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_EXPRESSION = re.compile(r"^\{\{-?\s*([A-Za-z][A-Za-z0-9_]*)\s*-?\}\}$")


@dataclass(frozen=True)
class Construct:
    placeholder: str
    source: str
    line: int

    @property
    def variable(self) -> str | None:
        """The name, when the construct is a bare `{{ name }}` expression."""
        match = _EXPRESSION.match(self.source)
        return match[1] if match else None


@dataclass(frozen=True)
class Protected:
    text: str
    constructs: tuple[Construct, ...]
    prefix: str

    def link(self, position: int) -> str:
        """The placeholder standing for tracked link `position` in compiled output."""
        return f"{self.prefix}L{position}x"

    def find(self, text: str) -> list[Construct]:
        """The constructs whose placeholders occur in `text`."""
        wanted = set(re.findall(rf"{self.prefix}(\d+)x", text))
        return [c for i, c in enumerate(self.constructs) if str(i) in wanted]

    def restore(self, text: str, calls: Mapping[int, str] | None = None) -> str:
        """Put the constructs back, and turn link placeholders into `{{ _link<i> }}`, or
        into `calls[i]` for a link whose URL a call makes (engine.render.links)."""

        def replace(match: re.Match[str]) -> str:
            if match[1]:
                position = int(match[2])
                if calls and position in calls:
                    return calls[position]
                return f"{{{{ {link_variable(position)} }}}}"
            return self.constructs[int(match[2])].source

        return re.sub(rf"{self.prefix}(L?)(\d+)x", replace, text)


def link_variable(position: int) -> str:
    """The context name of tracked link `position`; `_` keeps it out of authors' reach."""
    # One name per link rather than `_links[i]`: a plain name lookup skips the
    # sandbox's checked subscript on every link of every email.
    return f"_link{position}"


def protect(source: str) -> Protected:
    """Replace every `{{ }}` / `{% %}` with a placeholder; drop `{# #}` comments."""
    prefix = _prefix(source)
    constructs: list[Construct] = []
    parts: list[str] = []
    last = 0
    for match in _CONSTRUCT.finditer(source):
        parts.append(source[last : match.start()])
        last = match.end()
        if match[0].startswith("{#"):
            continue
        placeholder = f"{prefix}{len(constructs)}x"
        line = source.count("\n", 0, match.start()) + 1
        constructs.append(Construct(placeholder, match[0], line))
        parts.append(placeholder)
    parts.append(source[last:])
    return Protected("".join(parts), tuple(constructs), prefix)


def _prefix(source: str) -> str:
    # A prefix absent from the source cannot collide with anything the author wrote.
    prefix = "mjinja"
    while prefix in source:
        prefix += "q"
    return prefix
