"""What the templates of one installation share, written in when a template is read.

`{{ organisation.<key> }}` (`name`, `address`, `sender.email`, `privacy.policy_url`, …)
becomes the organisation file's value, and an address starting with `/` in a `src`,
`href` or `background-url` becomes absolute: `/static/…` on the asset host (by default
`{base_url}/static`), anything else on Mobilise's base URL. The values are constants of
the installation, so they go into the template before it compiles: a link built from
them is a static URL (tracked like any other), and a change makes a new template version.

`check` finds what `mobilise validate` warns about: images that will not load (a file
missing under static/, an address Mobilise does not serve and so cannot check) and
addresses left from the example (engine/rules/organisation.py).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from engine.errors import Problem
from engine.rules.organisation import KEYS, OrganisationDef, Privacy, Sender, placeholder

STATIC = "/static/"
_CONSTANT = re.compile(r"\{\{-?\s*organisation\.([a-z_]+(?:\.[a-z_]+)?)\s*-?\}\}")
# An attribute holding an address; group 3 is the address.
_ADDRESS = re.compile(r"""(\b(?:src|href|background-url)\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE)
_IMAGE = re.compile(r"""\b(?:src|background-url)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)


@dataclass(frozen=True)
class Site:
    organisation: OrganisationDef | None
    base_url: str
    asset_url: str
    # The folder published at `asset_url` (static/ of the project): what validate checks.
    static_dir: Path | None = None

    @classmethod
    def of(
        cls,
        organisation: OrganisationDef | None,
        *,
        base_url: str,
        asset_url: str | None = None,
        static_dir: Path | None = None,
    ) -> Site:
        base = base_url.rstrip("/")
        return cls(organisation, base, (asset_url or f"{base}/static").rstrip("/"), static_dir)

    def url(self, address: str) -> str:
        """`address` made absolute when it is one of Mobilise's own (`/…`)."""
        if not address.startswith("/") or address.startswith("//"):
            return address
        if address.startswith(STATIC):
            return f"{self.asset_url}/{address.removeprefix(STATIC)}"
        return f"{self.base_url}{address}"

    def constants(self) -> dict[str, str]:
        """The organisation's values by template key (`sender.email`), the logo absolute."""
        if self.organisation is None:
            return {}
        values = self.organisation.flat()
        if "logo" in values:
            values["logo"] = self.url(values["logo"])
        return values

    def local_file(self, url: str) -> Path | None:
        """The file under static/ that the absolute `url` serves, or None if none can."""
        for prefix in (f"{self.asset_url}/", f"{self.base_url}{STATIC}"):
            if url.startswith(prefix) and self.static_dir is not None:
                relative = unquote(urlsplit(url).path.removeprefix(urlsplit(prefix).path))
                return self.static_dir / relative
        return None

    def serves(self, url: str) -> bool:
        return url.startswith((f"{self.asset_url}/", f"{self.base_url}/"))


def sample() -> Site:
    """An installation for previews and tests that have no project of their own."""
    organisation = OrganisationDef(
        name="Vigie Libertés",
        legal_form="association loi 1901",
        address="12 rue de l'Exemple, 75011 Paris, France",
        website="https://www.example.org/",
        sender=Sender(name="Vigie Libertés", email="campagnes@example.org"),
        donation_url="https://dons.example.org/stop-reconnaissance-faciale",
        privacy=Privacy(
            contact="donnees@example.org", policy_url="https://www.example.org/donnees"
        ),
        logo="/static/images/logo-vigie-libertes.png",
    )
    return Site.of(organisation, base_url="https://mobilise.example.org")


Fill = Callable[[str, int], str]


def filler(site: Site, *, markup: bool, report: Callable[[str, int], None]) -> Fill:
    """A function writing the site into one line of template text (`markup`: MJML, where
    values are escaped and `/…` addresses made absolute); `report(message, line)`."""
    values = site.constants()

    def constant(match: re.Match[str], line: int) -> str:
        key = match[1]
        if key in values:
            value = values[key]
            return html.escape(value, quote=False).replace('"', "&quot;") if markup else value
        if site.organisation is None:
            report(f"organisation.{key}: there is no organisation.yaml", line)
        elif key in KEYS:
            report(f"organisation.{key} is not set in organisation.yaml", line)
        else:
            report(f"unknown organisation setting {key!r} (known: {', '.join(KEYS)})", line)
        return match[0]

    def address(match: re.Match[str]) -> str:
        return f"{match[1]}{match[2]}{site.url(match[3])}{match[2]}"

    def fill(text: str, line: int) -> str:
        text = _CONSTANT.sub(lambda m: constant(m, line), text)
        return _ADDRESS.sub(address, text) if markup else text

    return fill


@dataclass(frozen=True)
class Warnings:
    placeholders: list[Problem]  # production refuses to start with any
    images: list[Problem]


def check(lines: Iterable[tuple[str, str, int]], site: Site) -> Warnings:
    """What validate warns about in template text as written, given as (text, file, line):
    addresses left from the example (the organisation file's own are reported there), and
    images that do not load or cannot be checked once the site is written in. Each once."""
    found = Warnings([], [])
    fill = filler(site, markup=True, report=lambda _message, _line: None)
    seen: set[tuple[str, int, str]] = set()

    def add(to: list[Problem], problem: Problem) -> None:
        key = (problem.file or "", problem.line or 0, problem.message)
        if key not in seen:
            seen.add(key)
            to.append(problem)

    for text, file, line in lines:
        for match in _ADDRESS.finditer(text):
            why = placeholder(html.unescape(match[3]))
            if why is not None:
                message = f"{match[3]!r} is a placeholder ({why})"
                add(found.placeholders, Problem(message, file, line, hint=_OWN_PAGES))
                continue
            for src in _IMAGE.findall(fill(match[0], line)):
                problem = _image_problem(html.unescape(src), site)
                if problem is not None:
                    add(found.images, Problem(problem[0], file, line, hint=problem[1]))
    return found


_OWN_PAGES = "link to your organisation's own pages; production refuses to start with placeholders"


def _image_problem(src: str, site: Site) -> tuple[str, str] | None:
    if "{{" in src or src.startswith(("data:", "cid:")):
        return None  # made per recipient, or embedded
    local = site.local_file(src)
    if local is not None:
        if local.is_file():
            return None
        return f"image {src} will not load: no file {local}", "add the file under static/"
    if site.serves(src):
        return f"image {src} will not load: Mobilise serves images under {STATIC}", (
            "put it under static/ and write /static/…"
        )
    return f"image {src} is not served by Mobilise: validate cannot check that it loads", (
        "put it under static/ and write /static/…, or check it by hand"
    )
