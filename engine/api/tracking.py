"""Public tracking endpoints: click redirects and one-click unsubscribe (RFC 8058).

Neither sets a cookie, and a click stores neither the IP address nor the user agent.
The unsubscribe page asks before acting: mail scanners fetch every link in an email, so
a GET must never unsubscribe anyone.
"""

from __future__ import annotations

import re
from functools import lru_cache
from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from engine.api.deps import AppSettings, get_sessions
from engine.config import Settings
from engine.track import clicks, unsubscribes
from engine.track.clicks import Refused

router = APIRouter(tags=["tracking"])

_NOT_FOUND_DOC: dict[int | str, dict[str, Any]] = {
    404: {
        "description": "unknown or forged token",
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
}
_PAGES = {
    Refused.UNKNOWN: (
        '<!doctype html><html lang="fr"><title>Lien inconnu</title>'
        "<p>Ce lien n'existe pas ou a expiré.</p></html>",
        404,
    ),
    Refused.NO_DONATION_PAGE: (
        '<!doctype html><html lang="fr"><title>Page de don indisponible</title>'
        "<p>La page de don n'est pas encore configurée. Merci de réessayer plus tard.</p></html>",
        503,
    ),
}


def refused(why: Refused = Refused.UNKNOWN) -> Response:
    """The page for a link that leads nowhere: a fresh response each time, as a middleware
    may add to a response's headers in place (one shared object would keep the addition)."""
    page, status = _PAGES[why]
    return HTMLResponse(page, status_code=status)


@router.get(
    "/c/{token}",
    response_class=RedirectResponse,
    status_code=302,
    responses=_NOT_FOUND_DOC,
    openapi_extra={
        "parameters": [
            {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
        ]
    },
)
async def click(request: Request) -> Response:
    """Record the click, then redirect to the URL stored for that message's link (for a
    donation link, the donation page with the gift and the attribution reference). The
    redirect comes once the click is stored; clicks arriving together share one
    transaction (engine/track/clicks.py). Served by engine/api/fastpath.py."""
    settings: Settings = request.app.state.settings
    found = clicks.read(settings.keys, request.path_params["token"])
    if found is None:
        return refused()
    writer: clicks.ClickWriter = request.app.state.clicks
    target = await writer.follow(found)
    if isinstance(target, Refused):
        return refused(target)
    if found.gift is not None:  # the donation page with this email's own reference
        return RedirectResponse(target, status_code=302)
    return redirect(target)


def redirect(url: str) -> Response:
    """A 302 to a link's stored URL, its headers made once per URL: `RedirectResponse`
    quotes the URL and builds its headers on every call, 5 % of a click's CPU on the click
    bench (bench/README.md). A fresh response each time, with its own list of headers:
    a middleware may add to a response's headers in place."""
    response = Response(status_code=302)
    response.raw_headers = list(_redirect_headers(url))
    return response


@lru_cache(maxsize=1024)  # an email has a handful of links; a campaign, a few hundred
def _redirect_headers(url: str) -> tuple[tuple[bytes, bytes], ...]:
    return tuple(RedirectResponse(url, status_code=302).raw_headers)


CLICK_PATH = re.compile(r"^/c/([^/]+)$")


@router.get(
    "/u/{token}",
    response_class=HTMLResponse,
    responses=_NOT_FOUND_DOC,
)
def unsubscribe_page(token: str, settings: AppSettings) -> Response:
    """Ask for confirmation; unsubscribes nobody by itself."""
    if unsubscribes.read(settings.keys, token) is None:
        return refused()
    return HTMLResponse(_CONFIRM.format(token=escape(token)))


@router.post(
    "/u/{token}",
    response_class=HTMLResponse,
    responses=_NOT_FOUND_DOC,
)
def unsubscribe(token: str, request: Request, settings: AppSettings) -> Response:
    """RFC 8058 one-click (`List-Unsubscribe=One-Click`, urlencoded or multipart) or the
    confirmation form: either way the address is suppressed before the next dispatch."""
    message_id = unsubscribes.read(settings.keys, token)
    if message_id is None:
        return refused()
    with get_sessions(request).begin() as session:
        if not unsubscribes.confirm(
            session, message_id, now=request.app.state.clock(), secret=settings.keys
        ):
            return refused()
    return HTMLResponse(_DONE)


_CONFIRM = """<!doctype html><html lang="fr"><head><meta charset="utf-8">
<title>Se désinscrire</title></head><body><main>
<h1>Ne plus recevoir nos courriels ?</h1>
<form method="post" action="/u/{token}">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Confirmer la désinscription</button></form>
</main></body></html>"""
_DONE = """<!doctype html><html lang="fr"><head><meta charset="utf-8">
<title>Désinscription confirmée</title></head><body><main>
<h1>C'est fait.</h1><p>Vous ne recevrez plus nos courriels de campagne.</p>
</main></body></html>"""
