"""Helpers to write small templates inline."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from engine.render import variables
from engine.render.compiled import CompiledTemplate
from engine.render.messages import RenderedEmail
from engine.render.sources import TemplateSource, parse_source

SECRET = "render-test-secret"
BASE_URL = "https://m.example.org"

Make = Callable[..., TemplateSource]


def mjml(body: str, *, head: str = "") -> str:
    """A minimal valid MJML document around `body` (mj-column content)."""
    return (
        '<mjml lang="fr">\n'
        f"<mj-head><mj-title>{{{{ subject }}}}</mj-title>{head}</mj-head>\n"
        "<mj-body>\n<mj-section>\n<mj-column>\n"
        f"{body}\n"
        "</mj-column>\n</mj-section>\n</mj-body>\n</mjml>\n"
    )


@pytest.fixture
def make_source(tmp_path: Path) -> Make:
    def make(
        body: str,
        *,
        subject: str = "Bonjour {{ first_name }}",
        front: str = "",
        raw: str | None = None,
        name: str = "t",
    ) -> TemplateSource:
        text = raw if raw is not None else f"---\nsubject: {subject!r}\n{front}---\n{mjml(body)}"
        (tmp_path / f"{name}.mjml").write_text(text, encoding="utf-8")
        return parse_source(text, name=name, path=f"{name}.mjml", root=tmp_path)

    return make


def both(
    compiled: CompiledTemplate, message_id: int, *, base_url: str = BASE_URL, **context: object
) -> tuple[RenderedEmail, RenderedEmail]:
    """One email's full render and its skeleton render (the SendGrid path)."""
    values = {**variables.sample_context(), **context}
    options = {
        "message_id": message_id,
        "journey": "j",
        "step": "s",
        "base_url": base_url,
        "secret": SECRET,
    }
    return compiled.render(values, **options), compiled.render_skeleton(values, **options)  # type: ignore[arg-type]
