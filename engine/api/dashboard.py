"""The staff dashboard: Jinja2 pages behind a sign-in with an API key.

The petitions with their counts and milestones; each journey's figures (a diagram with
live counts, the funnel, the signatures curve with its milestones, A/B verdicts, revenue per
email: engine/stats); and the preview of every email template (the same rendering as
`mobilise preview`), with sample data or a real supporter's.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated

from babel.numbers import format_currency, format_decimal, format_percent
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.types import Scope

from engine.api import guards, staff
from engine.api.deps import AppSettings, DbSession, get_templates
from engine.api.staff import COOKIE, Fundraiser, Manager
from engine.api.templates import previewed
from engine.errors import MobiliseError
from engine.render.messages import RenderedEmail
from engine.render.previews import GMAIL_CLIP_BYTES, header_lines, html_bytes
from engine.rules.staff import Role
from engine.stats import ab, export, report
from engine.store import apikeys, audit, petitions

router = APIRouter(prefix="/dashboard", include_in_schema=False)
pages = Jinja2Templates(directory=Path(__file__).parent / "pages")


# The dashboard's pages are in English: its figures are written as English readers read
# them (140,719 · €2,245.00 · 4.4%), not as the French pages and emails write theirs
# (engine/render/french.py). A figure that does not exist (no email sent) is a dash.
def _number(value: int | None) -> str:
    return "–" if value is None else format_decimal(value, locale=_LOCALE)


def _euros(cents: int | None) -> str:
    return "–" if cents is None else format_currency(Decimal(cents) / 100, "EUR", locale=_LOCALE)


def _percent(rate: float | None) -> str:
    return "–" if rate is None else format_percent(rate, "#,##0.0%", locale=_LOCALE)


def _p_value(p: float | None) -> str:
    """As the verdict's sentence writes it (engine.stats.ab.p_text): `< 0.001`, `0.054`."""
    return "–" if p is None else ab.p_text(p).removeprefix("p = ").removeprefix("p ")


_LOCALE = "en"
pages.env.filters.update(number=_number, euros=_euros, percent=_percent, p_value=_p_value)

# Staff pages are never kept by a browser or a proxy; the security headers every page
# gets (CSP, nosniff) come from engine/api/guards.py. Each has a form (sign-out at least):
# its referrer policy lets the browser name it when posting (guards.FORM_REFERRER).
NO_STORE = {"Cache-Control": "no-store", **guards.FORM_REFERRER}


def _page(
    request: Request, name: str, context: dict[str, object], status_code: int = 200
) -> HTMLResponse:
    response = pages.TemplateResponse(request, name, context, status_code=status_code)
    response.headers.update(NO_STORE)
    return response


def error_page(request: Request, exc: MobiliseError) -> HTMLResponse:
    """A domain error met on a dashboard page, as a page rather than JSON."""
    return _page(request, "error.html", {"error": exc}, status_code=exc.status_code)


def login_page(request: Request, next_path: str, problem: str = "", status: int = 200) -> Response:
    return _page(request, "login.html", {"next": next_path, "problem": problem}, status)


def refused_sign_in(scope: Scope, exc: MobiliseError) -> Response:
    """The sign-in page saying why a browser's sign-in was refused before it was looked at
    (the sign-in limit: 429 with Retry-After), rather than JSON it would show raw."""
    problem = f"{exc.message} ({exc.hint})" if exc.hint else exc.message
    response = login_page(
        Request(scope), "/dashboard", problem[:1].upper() + problem[1:], exc.status_code
    )
    response.headers.update(exc.headers)
    return response


def _safe_next(path: str) -> str:
    # Only ever back into the dashboard: never an open redirect to another site.
    return path if path.startswith("/dashboard") and not path.startswith("//") else "/dashboard"


@router.get("/login")
def login_form(request: Request, next: str = "/dashboard") -> Response:
    return login_page(request, _safe_next(next))


@router.post("/login")
def login(
    request: Request,
    settings: AppSettings,
    session: DbSession,
    key: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/dashboard",
) -> Response:
    found = apikeys.authenticate(session, key.strip())
    now = request.app.state.clock()
    if found is None:
        # Recorded, as many as the sign-in limit lets through (engine/api/guards.py).
        staff.record_refusal(session, key.strip(), dashboard=True, now=now)
        return login_page(request, _safe_next(next), "Unknown or revoked key.", 401)
    audit.record(session, actor=audit.staff(found.key_id), action="sign-in", now=now)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        staff.sign_in(request, settings, session, found),
        max_age=int(settings.staff_session_hours * 3600),
        path="/dashboard",
        httponly=True,
        samesite="strict",
        secure=settings.base_url.startswith("https://"),
    )
    return response


@router.post("/logout")
def logout(request: Request, settings: AppSettings, session: DbSession) -> Response:
    staff.sign_out(request, settings, session)  # the cookie stops working everywhere now
    response = RedirectResponse("/dashboard/login", status_code=303)
    response.delete_cookie(
        COOKIE,
        path="/dashboard",
        httponly=True,
        samesite="strict",
        secure=settings.base_url.startswith("https://"),
    )
    return response


@router.get("")
def overview(request: Request, session: DbSession, who: Fundraiser) -> Response:
    return _page(
        request,
        "overview.html",
        {
            "who": who,
            "petitions": petitions.read_all(session),
            "journeys": report.journey_ids(session),
            "templates": get_templates(request).names() if who.role.allows(Role.manager) else [],
        },
    )


@router.get("/journeys/{journey_id}")
def journey(request: Request, session: DbSession, who: Fundraiser, journey_id: str) -> Response:
    """A journey as a diagram with live counts, its funnel, signatures curve, milestones,
    A/B verdicts and revenue per email; the charts draw the API's JSON, carried in the page."""
    stats = report.for_journey(session, journey_id)
    return _page(
        request, "journey.html", {"who": who, "stats": stats, "data": export.as_json(stats)}
    )


def _preview_page(
    request: Request, who: apikeys.Staff, email: RenderedEmail, supporter: str = ""
) -> Response:
    size, clipped = html_bytes(email)
    return _page(
        request,
        "preview.html",
        {
            "who": who,
            "email": email,
            "headers": header_lines(email),
            "supporter": supporter,
            "templates": get_templates(request).names(),
            "size_kb": size / 1024,
            "clipped": clipped,
            "clip_kb": GMAIL_CLIP_BYTES // 1024,
        },
    )


@router.get("/templates/{name}")
def preview_sample(request: Request, settings: AppSettings, who: Manager, name: str) -> Response:
    return _preview_page(request, who, previewed(request, settings, name))


# A supporter's address travels in a POST body, never in a URL (URLs end up in logs).
@router.post("/templates/{name}")
def preview_supporter(
    request: Request,
    settings: AppSettings,
    session: DbSession,
    who: Manager,
    name: str,
    supporter: Annotated[str, Form()],
) -> Response:
    email = previewed(request, settings, name, session=session, supporter=supporter)
    return _preview_page(request, who, email, supporter)
