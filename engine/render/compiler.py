"""Compile a template version once, for engine/render/compiled.py to render per recipient.

Jinja constructs swapped for placeholders → MJML → links found and replaced by tracked
placeholders → plain text derived → constructs put back → two Jinja templates (HTML,
autoescaped; text). Compilation is the slow part (milliseconds) and never runs per
recipient: `CompileCache` keeps one compiled template per version. The source is checked
first (engine/render/jinja_check.py, engine/render/mjml_check.py).
"""

from __future__ import annotations

from jinja2 import TemplateSyntaxError
from mjml import mjml_to_html

from engine.errors import Invalid, Problem
from engine.render import links as links_
from engine.render import mjml_check, sandbox, shared, skeletons
from engine.render.compiled import CompiledTemplate, OneLine, one_line
from engine.render.jinja_check import check_jinja, used_variables
from engine.render.placeholders import link_variable, protect
from engine.render.sources import TemplateSource
from engine.render.text import plain_text


def compile_template(source: TemplateSource) -> CompiledTemplate:
    """Compile one template version; raise Invalid with every problem found."""
    trees, problems = check_jinja(source)
    problems.extend(mjml_check.check(source))
    if problems:
        raise Invalid(f"template {source.name!r} is invalid", problems=problems)
    protected = protect(source.mjml)
    try:
        compiled = mjml_to_html(protected.text, keep_comments=False).html
    except Exception as exc:  # mjml-python raises bare ValueError/AssertionError/KeyError
        problems.append(Problem(f"MJML: {exc}", file=source.path))
        raise Invalid(f"template {source.name!r} is invalid", problems=problems) from exc
    for construct in protected.constructs:
        if construct.placeholder not in compiled:
            problems.append(
                source.problem(
                    f"{construct.source} is dropped by MJML",
                    construct.line,
                    hint="put Jinja inside <mj-text>, <mj-button> or <mj-raw>, not between"
                    " sections or columns",
                )
            )
    tracked = links_.track(compiled, protected)
    for issue in tracked.issues:
        problems.append(source.problem(issue.message, _line_of(source.mjml, issue.needle)))
    if problems:
        raise Invalid(f"template {source.name!r} is invalid", problems=problems)
    html_source = protected.restore(tracked.html, tracked.calls)
    text_source = protected.restore(plain_text(tracked.html), tracked.calls)
    try:
        html_template = sandbox.HTML.from_string(html_source)
        text_template = sandbox.TEXT.from_string(text_source)
        subject_template = sandbox.TEXT.from_string(source.subject)
        preheader_template = (
            sandbox.TEXT.from_string(source.preheader) if "{" in source.preheader else None
        )
    except TemplateSyntaxError as exc:  # what Jinja checks only when it compiles
        problems.append(Problem(f"Jinja: {exc.message}", file=source.path))
        raise Invalid(f"template {source.name!r} is invalid", problems=problems) from exc
    static_preheader = one_line(source.preheader)
    return CompiledTemplate(
        name=source.name,
        version=source.version,
        transactional=source.transactional,
        links=tracked.links,
        variables=used_variables(trees),
        source=source,
        subject_line=OneLine(subject_template, source.subject),
        preheader_line=(
            OneLine(preheader_template, source.preheader)
            if preheader_template is not None
            else None
        ),
        html_template=html_template,
        text_template=text_template,
        link_variables=tuple(link_variable(i) for i in range(len(tracked.links))),
        donation_positions=tuple(sorted(tracked.calls)),
        static_preheader=static_preheader,
        # The static preheader is the same object at every render: text, not a value.
        html_skeletons=skeletons.Skeletons(html_template, also_static=(static_preheader,)),
        text_skeletons=skeletons.Skeletons(text_template, also_static=(static_preheader,)),
        shared_names=(
            tuple(sorted(used_variables(trees) | {"tax_reduction"}))
            if shared.links_printed_whole(
                [sandbox.HTML.parse(html_source), sandbox.TEXT.parse(text_source)],
                [sandbox.TEXT.parse(source.subject), sandbox.TEXT.parse(source.preheader)],
                frozenset(
                    {
                        "unsubscribe_url",
                        "rights_url",
                        *(link_variable(i) for i in range(len(tracked.links))),
                    }
                ),
            )
            else None
        ),
        shared_renders=shared.SharedRenders(),
    )


class CompileCache:
    """Compiled templates by version (content hash): each version compiles once.

    Unbounded on purpose: a process sees a handful of versions (one per edit), and
    evicting one still in use would recompile it in the middle of a bulk send.
    """

    def __init__(self) -> None:
        self._compiled: dict[str, CompiledTemplate] = {}
        self.compiles = 0
        self.hits = 0

    def get(self, source: TemplateSource) -> CompiledTemplate:
        found = self._compiled.get(source.version)
        if found is not None:
            self.hits += 1
            return found
        compiled = compile_template(source)
        self.compiles += 1
        self._compiled[source.version] = compiled
        return compiled


def _line_of(text: str, needle: str) -> int:
    index = text.find(needle)
    return text.count("\n", 0, index) + 1 if index >= 0 else 1
