"""The templates of a directory (`templates/email/`), each compiled once per version.

Reading a template re-reads its files and hashes them (cheap: a few kilobytes) and
only a new version compiles. A bulk send calls `get` once and renders many times.
"""

from __future__ import annotations

from pathlib import Path

from engine.render import site as sites
from engine.render.compiled import CompiledTemplate
from engine.render.compiler import CompileCache
from engine.render.site import Site
from engine.render.sources import load_source


class TemplateLibrary:
    def __init__(
        self, directory: Path, cache: CompileCache | None = None, *, site: Site | None = None
    ) -> None:
        """`site`: the installation's organisation and addresses (engine/render/site.py);
        without one, the sample installation, as previews and tests use."""
        self.directory = directory
        self.cache = cache if cache is not None else CompileCache()
        self.site = site if site is not None else sites.sample()

    def names(self) -> list[str]:
        """Template names (file stems); partials live in sub-folders and are not listed."""
        return template_names(self.directory)

    def get(self, name: str) -> CompiledTemplate:
        """The compiled current version of `name`; raises Invalid if it has problems."""
        return self.cache.get(load_source(self.directory, name, self.site))

    def variables(self) -> dict[str, frozenset[str]]:
        """For each template, the context variables it needs."""
        return {name: self.get(name).variables for name in self.names()}


def template_names(directory: Path) -> list[str]:
    return sorted(path.stem for path in directory.glob("*.mjml") if path.is_file())
