"""The public petition pages: `/` and `/p/{slug}` (text, live count, the signing form), the
thank-you page after signing, the form alone to embed elsewhere, and `/static/`.

The form posts to `POST /api/petitions/{slug}/signatures` (engine/api/petitions.py), which
answers a browser with a redirect here. Pages load nothing inline (styles and the count's
refresh are files under /static/mobilise/): they run under `default-src 'self'`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from engine.api.deps import AppSettings, DbSession
from engine.api.guards import FORM_REFERRER
from engine.errors import MobiliseError, NotFound
from engine.render import french
from engine.rules.campaigns import CampaignDef
from engine.rules.yaml_lines import load_model
from engine.send.identity import Identity
from engine.store import petitions
from engine.store.petitions import PetitionRead

router = APIRouter(include_in_schema=False)
pages = Jinja2Templates(directory=Path(__file__).parent / "pages" / "public")
pages.env.filters["number"] = french.number
Slug = Annotated[str, PathParam(pattern=r"^[a-z0-9-]{1,100}$")]

# What every response gets (engine/api/guards.py), opened just enough: the pages' own style
# sheet, script and count requests, and images from the asset host (a CDN: https).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self';"
        " img-src 'self' https: data:; form-action 'self'; frame-ancestors 'none';"
        " base-uri 'none'"
    ),
}
# How often an open petition page asks for the count again (static/mobilise/petition.js).
REFRESH_SECONDS = 20


def mount(app: FastAPI, static_dir: Path) -> None:
    """`/static/`: the project's static/ (images the emails show), then Mobilise's own
    files (`/static/mobilise/…`: the pages' style sheet and script)."""
    files = StaticFiles(directory=static_dir, packages=[("engine.api", "static")], check_dir=False)
    app.mount("/static", files, name="static")


@dataclass(frozen=True)
class Block:
    """A paragraph (`items` empty) or a list of the petition's text."""

    text: str
    items: tuple[str, ...] = ()


def blocks(text: str) -> list[Block]:
    """Paragraphs separated by blank lines; lines starting with `- ` make a list (a line
    that does not continue the item before it)."""
    found: list[Block] = []
    for chunk in text.strip().split("\n\n"):
        lead: list[str] = []
        items: list[str] = []
        for line in chunk.splitlines():
            stripped = line.strip()
            if stripped.startswith("- "):
                items.append(stripped[2:])
            elif items:
                items[-1] += f" {stripped}"
            else:
                lead.append(stripped)
        if lead or items:
            found.append(Block(" ".join(lead), tuple(items)))
    return found


@lru_cache(maxsize=64)
def _texts(path: str, _modified: int) -> dict[str, str]:
    campaign, _node, _problems = load_model(
        Path(path).read_text(encoding="utf-8"), path, CampaignDef
    )
    return {campaign.petition.slug: campaign.petition.text} if campaign is not None else {}


def petition_text(project_dir: Path, slug: str) -> str:
    """The page text declared for `slug` in journeys/*.yaml, read again when a file changes
    (one stat per file and request; `mobilise sync` is for what the database keeps)."""
    for path in sorted((project_dir / "journeys").glob("*.y*ml")):
        found = _texts(str(path), path.stat().st_mtime_ns).get(slug)
        if found is not None:
            return found
    return ""


def _page(
    request: Request, name: str, context: dict[str, object], status_code: int = 200
) -> HTMLResponse:
    identity: Identity = request.app.state.identity
    context = {"organisation": identity.organisation, "site": identity.site, **context}
    response = pages.TemplateResponse(request, name, context, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


def _petition_page(request: Request, settings: AppSettings, petition: PetitionRead) -> Response:
    identity: Identity = request.app.state.identity
    page = _page(
        request,
        "petition.html",
        {
            "petition": petition,
            "blocks": blocks(petition_text(settings.project_dir, petition.slug)),
            "action": f"/api/petitions/{petition.slug}/signatures",
            "share_url": identity.site.url(f"/p/{petition.slug}"),
            "refresh_seconds": REFRESH_SECONDS,
        },
    )
    page.headers.update(FORM_REFERRER)
    return page


@router.get("/")
def home(request: Request, settings: AppSettings, session: DbSession) -> Response:
    """The campaign's petition; a list when there are several."""
    found = petitions.read_all(session)
    if len(found) == 1:
        return _petition_page(request, settings, found[0])
    return _page(request, "list.html", {"petitions": found})


@router.get("/p/{slug}")
def petition_page(
    request: Request, settings: AppSettings, session: DbSession, slug: Slug
) -> Response:
    try:
        petition = petitions.read(session, slug)
    except NotFound:
        return _not_found(request)
    return _petition_page(request, settings, petition)


@router.get("/p/{slug}/merci")
def thanks(request: Request, session: DbSession, slug: Slug) -> Response:
    """Where a browser lands after signing: the title, a link to share, the donation page."""
    try:
        petition = petitions.read(session, slug)
    except NotFound:
        return _not_found(request)
    identity: Identity = request.app.state.identity
    url = identity.site.url(f"/p/{slug}")
    message = f"J'ai signé « {petition.title} ». Signez vous aussi : {url}"
    return _page(
        request,
        "thanks.html",
        {
            "petition": petition,
            "share_url": url,
            "share": {
                "Par courriel": f"mailto:?subject={quote(petition.title)}&body={quote(message)}",
                "WhatsApp": f"https://wa.me/?text={quote(message)}",
                "Facebook": f"https://www.facebook.com/sharer/sharer.php?u={quote(url, safe='')}",
            },
        },
    )


@router.get("/p/{slug}/formulaire")
def embeddable_form(request: Request, session: DbSession, slug: Slug) -> Response:
    """The signing form alone, with absolute addresses, to paste into another site
    (docs/public-pages.md; that site's origin goes in MOBILISE_ALLOWED_ORIGINS)."""
    try:
        petition = petitions.read(session, slug)
    except NotFound:
        return _not_found(request)
    identity: Identity = request.app.state.identity
    return _page(
        request,
        "embed.html",
        {"petition": petition, "action": identity.site.url(f"/api/petitions/{slug}/signatures")},
    )


def _not_found(request: Request) -> Response:
    return _page(request, "not_found.html", {}, status_code=404)


_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def wants_page(request: Request) -> bool:
    """A browser that posted a signing form (it asks for HTML): it gets a page, not JSON,
    when refused. Scripts posting forms keep the JSON problems."""
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    accept = request.headers.get("accept", "")
    return request.method == "POST" and media in _FORMS and "text/html" in accept


def refused_page(request: Request, exc: MobiliseError) -> Response:
    """What a signer whose form was refused reads: each problem, and the way back."""
    slug = request.path_params.get("slug", "")
    context: dict[str, object] = {"problems": exc.problems, "back": f"/p/{slug}" if slug else "/"}
    return _page(request, "refused.html", context, status_code=exc.status_code)
