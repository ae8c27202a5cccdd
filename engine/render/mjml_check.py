"""Structural checks of MJML source, with line numbers.

mjml-python parses leniently and reports no positions: an unknown tag is silently
dropped and a missing `alt` goes unnoticed. This pass reads the expanded source
with the standard library's HTML parser, which does know where it is.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from engine.errors import Problem
from engine.render.sources import TemplateSource

KNOWN_TAGS = frozenset(
    """
    mjml mj-head mj-body mj-attributes mj-all mj-class mj-breakpoint mj-font
    mj-html-attributes mj-html-attribute mj-selector mj-preview mj-style mj-title
    mj-accordion mj-accordion-element mj-accordion-text mj-accordion-title mj-button
    mj-carousel mj-carousel-image mj-column mj-divider mj-group mj-hero mj-image
    mj-navbar mj-navbar-link mj-raw mj-section mj-social mj-social-element mj-spacer
    mj-table mj-text mj-wrapper
    """.split()
)
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)


class _Checker(HTMLParser):
    def __init__(self, source: TemplateSource) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self.problems: list[Problem] = []
        self.open: list[tuple[str, int]] = []
        self.seen_root = False

    def _problem(self, message: str, hint: str | None = None) -> None:
        self.problems.append(self.source.problem(message, self.getpos()[0], hint=hint))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._check(tag, dict(attrs))
        if tag.startswith("mj") and tag != "mj-include":
            self.open.append((tag, self.getpos()[0]))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._check(tag, dict(attrs))

    def handle_endtag(self, tag: str) -> None:
        if not tag.startswith("mj"):
            return
        if not self.open or self.open[-1][0] != tag:
            opened = f" (<{self.open[-1][0]}> is open)" if self.open else ""
            self._problem(f"</{tag}> closes nothing{opened}")
            return
        self.open.pop()

    def _check(self, tag: str, attrs: dict[str, str | None]) -> None:
        if tag == "mjml":
            self.seen_root = True
            if not attrs.get("lang"):
                self._problem('<mjml> needs lang="fr"', hint="screen readers pick the voice")
        elif tag.startswith("mj-") and tag not in KNOWN_TAGS:
            self._problem(f"unknown MJML tag <{tag}>", hint="mjml-python drops it silently")
        if tag in ("mj-image", "img") and attrs.get("alt") is None:
            self._problem(f'<{tag}> needs an alt text (alt="" if purely decorative)')
        if tag == "mj-include":
            self._problem("<mj-include> must sit alone on its line, with a quoted path")


def check(source: TemplateSource) -> list[Problem]:
    """Problems in the MJML structure of `source` (after includes)."""
    # Blank out Jinja, keeping its newlines, so `{% if a < b %}` is not read as a tag.
    text = _JINJA.sub(lambda m: "x" + "\n" * m[0].count("\n"), source.mjml)
    checker = _Checker(source)
    checker.feed(text)
    checker.close()
    if not checker.seen_root:
        checker.problems.append(source.problem("no <mjml> root element", 1))
    for tag, line in checker.open:
        checker.problems.append(source.problem(f"<{tag}> is never closed", line))
    return checker.problems
