"""`/rights/{token}`: the supporter's own page, linked from the footer of every email.

The token is the email's (engine/render/tokens.py, kind `r`: an unsubscribe token does not
open it) and leads to the supporter the email went to. From the page they download all
their data as JSON, and ask for erasure: a first POST asks them to confirm, the second
erases at once (docs/privacy.md). Each action is logged as done by `supporter`.

No cookie; nothing cached; no referrer leaks the token to another site.
"""

from __future__ import annotations

import json
from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from engine.api.deps import AppSettings, DbSession
from engine.config import Secret
from engine.render import tokens
from engine.send import configured_transport
from engine.store import audit, data_export, personal_data

router = APIRouter(prefix="/rights", tags=["supporters' rights"])

_PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "unknown or forged token"}}
# Message ids are signed up to 2^64 - 1; the databases' ids stop at 2^63 - 1.
_LARGEST_ID = 2**63 - 1


def _owner(session: DbSession, secret: Secret, token: str) -> tuple[int, bool] | None:
    message_id = tokens.read_rights_token(secret, token)
    if message_id is None or message_id > _LARGEST_ID:
        return None
    return personal_data.owner_of_message(session, message_id)


def supporter_page(title: str, body: str, status: int = 200) -> HTMLResponse:
    """A page of the supporter's own (rights, confirmation): no cache, no referrer."""
    return HTMLResponse(
        f'<!doctype html><html lang="fr"><head><meta charset="utf-8">'
        f'<meta name="robots" content="noindex"><title>{title}</title></head>'
        f"<body><main>{body}</main></body></html>",
        status_code=status,
        headers=_PRIVATE,
    )


_UNKNOWN = ("Lien inconnu", "<p>Ce lien n'existe pas ou a expiré.</p>", 404)
_ERASED = ("Données effacées", "<h1>Vos données ont été effacées.</h1>")


@router.get("/{token}", response_class=HTMLResponse, responses=_NOT_FOUND)
def page(token: str, session: DbSession, settings: AppSettings) -> Response:
    """What we keep about you, how to download it, how to have it erased."""
    owner = _owner(session, settings.keys, token)
    if owner is None:
        return supporter_page(*_UNKNOWN)
    if owner[1]:
        return supporter_page(*_ERASED)
    safe = escape(token)
    return supporter_page(
        "Vos données et vos droits",
        "<h1>Vos données et vos droits</h1>"
        "<p>Nous gardons votre adresse, vos nom, prénom et code postal si vous les avez donnés,"
        " vos signatures, vos consentements, les courriels que nous vous avons envoyés, vos"
        " clics et vos dons.</p>"
        f'<p><a href="/rights/{safe}/data" download>Télécharger toutes mes données'
        " (JSON)</a></p>"
        "<h2>Effacer mes données</h2>"
        "<p>Vos signatures restent comptées, sans rien qui vous désigne. Nous ne vous écrirons"
        " plus.</p>"
        f'<form method="post" action="/rights/{safe}/erase">'
        '<button type="submit">Demander l\'effacement</button></form>',
    )


@router.get(
    "/{token}/data",
    responses={200: {"content": {"application/json": {}}}, **_NOT_FOUND},
    response_class=Response,
)
def data(token: str, request: Request, session: DbSession, settings: AppSettings) -> Response:
    """All your data, as a JSON file."""
    owner = _owner(session, settings.keys, token)
    if owner is None or owner[1]:
        return supporter_page(*_UNKNOWN)
    exported = data_export.export(
        session, owner[0], actor=audit.SUPPORTER, now=request.app.state.clock()
    )
    return Response(
        json.dumps(exported, ensure_ascii=False, indent=2),
        media_type="application/json",
        headers={**_PRIVATE, "Content-Disposition": 'attachment; filename="mes-donnees.json"'},
    )


@router.post("/{token}/erase", response_class=HTMLResponse, responses=_NOT_FOUND)
def erase(
    token: str,
    request: Request,
    session: DbSession,
    settings: AppSettings,
    confirm: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Without `confirm=yes`, a page asking to confirm; with it, the erasure, at once."""
    owner = _owner(session, settings.keys, token)
    if owner is None:
        return supporter_page(*_UNKNOWN)
    if owner[1]:
        return supporter_page(*_ERASED)
    if confirm != "yes":
        return supporter_page(
            "Confirmer l'effacement",
            "<h1>Effacer vos données pour de bon ?</h1>"
            "<p>Cela ne peut pas être annulé. Nous ne gardons qu'une empreinte chiffrée de"
            " votre adresse, pour ne jamais la réimporter.</p>"
            f'<form method="post" action="/rights/{escape(token)}/erase">'
            '<input type="hidden" name="confirm" value="yes">'
            '<button type="submit">Oui, effacer mes données</button></form>',
        )
    done = personal_data.erase(
        session,
        personal_data.one(owner[0]),
        now=request.app.state.clock(),
        actor=audit.SUPPORTER,
        secret=settings.keys,
    )
    configured_transport.forget_copies(settings, done.message_ids)
    return supporter_page(*_ERASED)
