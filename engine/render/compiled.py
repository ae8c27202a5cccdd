"""A compiled template version, rendered per recipient with Jinja2 only.

Rendering: sign the link tokens, run the Jinja templates, add the headers; for providers
that substitute, a skeleton shared with other recipients plus substitutions
(engine.render.skeletons), or a render shared by recipients with the same values
(engine.render.shared). Compiling is engine/render/compiler.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from jinja2 import Template, meta

from engine.config import Secret
from engine.render import links as links_
from engine.render import sandbox, shared, skeletons
from engine.render.messages import NO_SUBSTITUTIONS, RenderedEmail, email_headers
from engine.render.shared import Hole
from engine.render.sources import TemplateSource


@dataclass(frozen=True)
class CompiledTemplate:
    name: str
    version: str
    transactional: bool
    # The tracked URLs, in order: a click token's position indexes this tuple. Store
    # it with the version: the redirect must only ever go to these.
    links: tuple[str, ...]
    # Context variables the caller must provide (the renderer adds `sandbox.PROVIDED`).
    variables: frozenset[str]
    source: TemplateSource = field(repr=False, compare=False)
    subject_line: OneLine = field(repr=False, compare=False)
    # None when the preheader has no Jinja: most don't.
    preheader_line: OneLine | None = field(repr=False, compare=False)
    html_template: Template = field(repr=False, compare=False)
    text_template: Template = field(repr=False, compare=False)
    link_variables: tuple[str, ...] = field(repr=False, compare=False)
    # Positions of the donation links (engine.render.links): their variable is a function.
    donation_positions: tuple[int, ...] = field(repr=False, compare=False)
    static_preheader: str = field(repr=False, compare=False)
    html_skeletons: skeletons.Skeletons = field(repr=False, compare=False)
    text_skeletons: skeletons.Skeletons = field(repr=False, compare=False)
    # The values a render reads (engine.render.shared), and the renders by those values.
    # None: renders of this template are not shared (a link used other than printed).
    shared_names: tuple[str, ...] | None = field(repr=False, compare=False)
    shared_renders: shared.SharedRenders = field(repr=False, compare=False)

    @property
    def click_positions(self) -> range | tuple[int, ...]:
        """The positions of plain tracked links (a donation link signs its own token)."""
        if not self.donation_positions:
            return range(len(self.links))
        donation = set(self.donation_positions)
        return tuple(p for p in range(len(self.links)) if p not in donation)

    def render(
        self,
        context: Mapping[str, Any],
        *,
        message_id: int,
        journey: str,
        step: str,
        base_url: str,
        secret: Secret,
    ) -> RenderedEmail:
        """One recipient's email. Raises jinja2 errors if `context` lacks a variable."""
        values = self._values(context, _signer(secret, message_id, base_url))
        return self._email(
            values["subject"],
            values["preheader"],
            _render(self.html_template, values),
            _render(self.text_template, values),
            message_id=message_id,
            journey=journey,
            step=step,
            unsubscribe=values["unsubscribe_url"],
        )

    def render_skeleton(
        self,
        context: Mapping[str, Any],
        *,
        message_id: int,
        journey: str,
        step: str,
        base_url: str,
        secret: Secret,
    ) -> RenderedEmail:
        """The same email as `render`, as a skeleton shared with other recipients plus
        `substitutions` (engine.render.skeletons), for providers that substitute.

        Falls back to the full render (no substitutions) when the values cannot be
        carried safely as substitutions. Recipients whose values are the same share one
        render, their links put in its holes (engine.render.shared).
        """
        if self.shared_names is not None and shared.base_is_inert(base_url):
            found_key = shared.key(context, self.shared_names)
            if found_key is not None:
                found = self.shared_renders.get(found_key, lambda: self._share(context))
                if found is not None:
                    return self._from_shared(
                        found,
                        message_id=message_id,
                        journey=journey,
                        step=step,
                        base_url=base_url,
                        secret=secret,
                    )
        values = self._values(context, _signer(secret, message_id, base_url))
        subject = values["subject"]
        distinct = {subject: 0}
        html = self.html_skeletons.fill(skeletons.pieces(self.html_template, values), distinct)
        text = self.text_skeletons.fill(skeletons.pieces(self.text_template, values), distinct)
        substitutions = skeletons.substitutions(distinct)
        # An empty subject goes as it is, for the transport to refuse.
        if html is None or text is None or substitutions is None or not subject.strip():
            return self.render(
                context,
                message_id=message_id,
                journey=journey,
                step=step,
                base_url=base_url,
                secret=secret,
            )
        return self._email(
            skeletons.TAGS[0],
            values["preheader"],
            html,
            text,
            message_id=message_id,
            journey=journey,
            step=step,
            unsubscribe=values["unsubscribe_url"],
            substitutions=substitutions,
        )

    def _share(self, context: Mapping[str, Any]) -> shared.SharedRender | None:
        """The skeleton render for `context` with holes for the links; None when it cannot
        be shared. Raises jinja2 errors as `render` does."""
        holes = shared.Holes()
        values = self._values(context, holes.mark)
        subject, preheader = values["subject"], values["preheader"]
        distinct = {subject: 0}
        html = self.html_skeletons.fill(skeletons.pieces(self.html_template, values), distinct)
        text = self.text_skeletons.fill(skeletons.pieces(self.text_template, values), distinct)
        substitutions = skeletons.substitutions(distinct)
        if html is None or text is None or substitutions is None or not subject.strip():
            return None
        if any(shared.HOLE in part for part in (subject, preheader, html, text)):
            return None  # a link where only a value may carry one
        found = tuple(substitutions.values())
        holed = tuple(i for i, value in enumerate(found) if shared.HOLE in value)
        return shared.SharedRender(
            subject=subject,
            preheader=preheader,
            html=html,
            text=text,
            values=found,
            holes=tuple(holes.found),
            holed=holed,
            used=shared.holes_in(found, holed),
        )

    def _from_shared(
        self,
        found: shared.SharedRender,
        *,
        message_id: int,
        journey: str,
        step: str,
        base_url: str,
        secret: Secret,
    ) -> RenderedEmail:
        urls = found.urls(_signer(secret, message_id, base_url))
        return self._email(
            skeletons.TAGS[0],
            found.preheader,
            found.html,
            found.text,
            message_id=message_id,
            journey=journey,
            step=step,
            unsubscribe=urls[0],
            substitutions=found.substitutions(urls, skeletons.TAGS),
        )

    def _values(self, context: Mapping[str, Any], link: Callable[[Hole], str]) -> dict[str, Any]:
        """What the templates see: globals, context, the links (`link` makes each one: a
        signed URL, or a shared render's hole), subject, preheader. The unsubscribe link
        is made first: a shared render's hole 0."""
        values = dict(_GLOBALS)
        values.update(context)
        values.setdefault("tax_reduction", self.source.tax_reduction)
        values["unsubscribe_url"] = link(Hole("u"))
        values["rights_url"] = link(Hole("r"))
        for position in self.click_positions:
            values[self.link_variables[position]] = link(Hole("c", position))
        for position in self.donation_positions:
            values[self.link_variables[position]] = links_.donation_function(
                partial(_donation, link, position)
            )
        values["subject"] = self.subject_line.render(values)
        values["preheader"] = (
            self.preheader_line.render(values)
            if self.preheader_line is not None
            else self.static_preheader
        )
        return values

    def _email(
        self,
        subject: str,
        preheader: str,
        html: str,
        text: str,
        *,
        message_id: int,
        journey: str,
        step: str,
        unsubscribe: str,
        substitutions: Mapping[str, str] = NO_SUBSTITUTIONS,
    ) -> RenderedEmail:
        return RenderedEmail(
            subject=subject,
            preheader=preheader,
            html=html,
            text=text,
            headers=email_headers(
                message_id=message_id,
                journey=journey,
                step=step,
                unsubscribe_url=None if self.transactional else unsubscribe,
            ),
            template=self.name,
            version=self.version,
            message_id=message_id,
            transactional=self.transactional,
            substitutions=substitutions,
        )


def _signer(secret: Secret, message_id: int, base_url: str) -> Callable[[Hole], str]:
    """Each link of one email as its signed URL."""
    return partial(Hole.url, secret=secret, message_id=message_id, base=base_url.rstrip("/"))


def _donation(link: Callable[[Hole], str], position: int, cents: int, frequency: str) -> str:
    return link(Hole("d", position, cents, frequency))


class OneLine:
    """A subject or preheader template, rendered on one line and remembered by the values
    it reads (`shared.key`: plain values only): a send renders the same few subjects (one
    per first name, say) again and again."""

    def __init__(self, template: Template, source: str) -> None:
        self.template = template
        self.names = tuple(sorted(meta.find_undeclared_variables(sandbox.TEXT.parse(source))))
        self._rendered: dict[tuple[object, ...], str] = {}

    def render(self, values: Mapping[str, Any]) -> str:
        key = shared.key(values, self.names)
        if key is None:
            return one_line(_render(self.template, dict(values)))
        found = self._rendered.get(key)
        if found is None:
            if len(self._rendered) >= shared.KEPT:
                self._rendered.clear()
            found = self._rendered[key] = one_line(_render(self.template, dict(values)))
        return found


# Tabs and everything str.splitlines() breaks on.
_LINE_BREAKS = re.compile(r"[\t\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")
# Flattened once: a plain dict, where the environment keeps a ChainMap.
_GLOBALS = dict(sandbox.HTML.globals)


def _render(template: Template, values: dict[str, Any]) -> str:
    """`Template.render` without its per-call merge of the globals into the context.

    That merge walks a ChainMap of the environment's globals (twice) and cost a third
    of the time of a whole email; `values` already holds the globals templates may
    call, and the templates of one email (subject, preheader, HTML, text) share it.
    """
    # What jinja2.runtime.new_context(..., shared=True) builds, minus a call layer.
    environment = template.environment
    context = environment.context_class(environment, values, template.name, template.blocks)
    try:
        rendered: str = template.environment.concat(template.root_render_func(context))
        return rendered
    except Exception:
        template.environment.handle_exception()
        raise  # handle_exception always raises; this keeps mypy and readers sure of it


def one_line(text: str) -> str:
    # Subjects and preheaders become headers and hidden text: a line break from a
    # supporter's name must not start a new header line. Not str.split(): that would
    # also eat the no-break spaces of "140 000".
    if _LINE_BREAKS.search(text) is None:
        return text.strip(" ")
    return _LINE_BREAKS.sub(" ", text).strip(" ")
