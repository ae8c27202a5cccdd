"""`/confirm/{token}`: the double opt-in link of the `confirm` email.

GET shows a page with a button and changes nothing: mail scanners and link previews fetch
the links of an email, and must not confirm for the reader. The button POSTs, which
confirms (engine/store/confirmations.py): the signature is recorded with its consents and
the journeys may enrol the signer. The token is signed with its own kind byte and an
expiry (engine/render/tokens.py); an unknown, forged or expired one gets a 404 page.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from engine.api.deps import AppSettings, DbSession, get_sessions
from engine.api.rights import supporter_page
from engine.config import Secret
from engine.render import tokens
from engine.rules.ids import is_key
from engine.store import confirmations

router = APIRouter(prefix="/confirm", tags=["double opt-in"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "unknown, forged or expired token", "content": {"text/html": {}}}
}
_UNKNOWN = (
    "Lien inconnu",
    "<p>Ce lien de confirmation n'existe pas ou a expiré. Vous pouvez signer à nouveau.</p>",
    404,
)
_DONE = (
    "Signature confirmée",
    "<h1>Merci, votre signature est confirmée.</h1>",
)


def _pending(request: Request, token: str, secret: Secret) -> int | None:
    pending_id = tokens.read_confirm_token(secret, token, request.app.state.clock())
    return pending_id if pending_id is not None and is_key(pending_id) else None


@router.get("/{token}", response_class=HTMLResponse, responses=_NOT_FOUND)
def page(token: str, request: Request, session: DbSession, settings: AppSettings) -> Response:
    """The confirmation button. Changes nothing."""
    pending_id = _pending(request, token, settings.keys)
    found = (
        None
        if pending_id is None
        else confirmations.read(session, pending_id, now=request.app.state.clock())
    )
    if found is None:
        return supporter_page(*_UNKNOWN)
    if found.confirmed_at is not None:
        return supporter_page(*_DONE)
    return supporter_page(
        "Confirmer votre signature",
        f"<h1>{escape(found.petition_title)}</h1>"
        "<p>Un clic pour confirmer que cette adresse est la vôtre et que vous signez.</p>"
        f'<form method="post" action="/confirm/{escape(token)}">'
        '<button type="submit">Je confirme ma signature</button></form>',
    )


@router.post("/{token}", response_class=HTMLResponse, responses=_NOT_FOUND)
def confirm(token: str, request: Request, settings: AppSettings) -> Response:
    """Confirm: the signature counts, its consents are granted, journeys may enrol it."""
    pending_id = _pending(request, token, settings.keys)
    if pending_id is None:
        return supporter_page(*_UNKNOWN)
    # Committed before the journey pass is woken, so that the pass sees it.
    with get_sessions(request).begin() as session:
        done = confirmations.confirm(session, pending_id, now=request.app.state.clock())
    if done is None:
        return supporter_page(*_UNKNOWN)
    wake: Callable[[], object] | None = request.app.state.signing.on_signed
    if done == "confirmed" and wake is not None:
        wake()
    return supporter_page(*_DONE)
