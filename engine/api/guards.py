"""What every request passes before a route sees it (docs/operations.md, "Public surface").

- Signing (`POST /api/petitions/{slug}/signatures`): a browser's `Origin` (or `Referer`)
  must be the page's own host, MOBILISE_BASE_URL's origin or one of
  MOBILISE_ALLOWED_ORIGINS (403 otherwise: a cross-site form records nothing); those
  origins also get CORS on that route and on reading a petition (`GET
  /api/petitions/{slug}`), and only there.
- The dashboard's forms (`POST /dashboard/...`: sign-in, sign-out, previews): a browser's
  `Origin` (or `Referer`) must be the page's own host or MOBILISE_BASE_URL's origin (403
  otherwise: another site cannot sign a staff member's browser in or out).
- Signing and staff sign-in: a per-client rate limit (429 with `Retry-After`; a browser
  signing in gets the sign-in page saying so).
- Every request: a body cap per route (413), from `Content-Length` before reading, else
  counted while reading, so an oversized body is never read whole (a webhook's before its
  signature is checked).
- Every response: security headers (CSP with `frame-ancestors 'none'`, `nosniff`, no
  referrer), unless the route set its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.api import accesslog, dashboard
from engine.api.petitions import READ_PATH, SIGN_PATH
from engine.api.ratelimit import TokenBuckets, client_key
from engine.config import Settings
from engine.errors import Forbidden, MobiliseError, TooLarge, TooManyRequests

SIGN, LOGIN, WEBHOOK = "sign", "login", "webhook"
# A page answering a refusal, for a browser (the sign-in page), rather than JSON.
PageFor = Callable[[Scope, MobiliseError], Response]
LOGIN_PATH = "/dashboard/login"
STAFF_PREFIX = "/dashboard/"

# Pages load nothing from elsewhere but images (an email's, in the dashboard's preview,
# shown in a sandboxed iframe: at Mobilise's own address, http in development, or any
# https one); no page may be framed by another site.
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' https: data:; "
    "frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


RawHeaders = Sequence[tuple[bytes, bytes]]
SECURITY: RawHeaders = tuple(
    (name.encode(), value.encode()) for name, value in SECURITY_HEADERS.items()
)
_RELAXED: RawHeaders = tuple(
    (name, b"frame-ancestors 'none'" if name == b"content-security-policy" else value)
    for name, value in SECURITY
)


# A page with a form: under the `no-referrer` of every other response, a browser posts it
# with `Origin: null`, which the origin checks above refuse (signing, the dashboard).
# `same-origin` names the page to Mobilise only, never to another site.
FORM_REFERRER = {"Referrer-Policy": "same-origin"}


def with_security_headers(
    headers: Iterable[tuple[bytes, bytes]], added: RawHeaders = SECURITY
) -> list[tuple[bytes, bytes]]:
    """A response's raw headers and the security headers (`added`) it does not set itself:
    the raw list, not MutableHeaders, as this runs on every response, a click redirect's
    included (bench/README.md)."""
    found = list(headers)
    own = {name.lower() for name, _ in found}
    found.extend(header for header in added if header[0] not in own)
    return found


def door(scope: Scope) -> str | None:
    """Which guarded entrance a request comes through, if any."""
    path: str = scope["path"]
    if path.startswith("/webhooks/"):
        return WEBHOOK
    if scope["method"] != "POST":
        return None
    if SIGN_PATH.match(path):
        return SIGN
    return LOGIN if path == LOGIN_PATH else None


def origin_of(url: str) -> str:
    """`scheme://host[:port]`, lowercased, default ports dropped; '' if `url` has none."""
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.hostname:
        return ""
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    port = f":{parts.port}" if parts.port not in (None, default) else ""
    return f"{parts.scheme.lower()}://{parts.hostname}{port}"


def allowed_origins(settings: Settings) -> frozenset[str]:
    listed = (origin_of(o) for o in settings.allowed_origins.split(","))
    return frozenset(o for o in (*listed, origin_of(settings.base_url)) if o)


class Guards:
    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        clock: Callable[[], datetime],
        sign_in: TokenBuckets,
        sign_in_page: PageFor | None = None,
    ) -> None:
        self.app = app
        self.sign_in_page = sign_in_page
        self.origins = allowed_origins(settings)
        # The dashboard's forms are posted from its own pages only: this site's origin,
        # never the petition sites of MOBILISE_ALLOWED_ORIGINS.
        self.own_origins = frozenset(o for o in (origin_of(settings.base_url),) if o)
        self.caps = {SIGN: settings.sign_max_bytes, WEBHOOK: settings.webhook_max_bytes}
        self.default_cap = settings.body_max_bytes
        self.buckets = {
            SIGN: TokenBuckets(settings.sign_rate_per_minute),
            LOGIN: sign_in,
        }
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        kind = door(scope)
        cap = self.caps.get(kind or "", self.default_cap)
        refusal = self._refusal(scope, kind, cap)
        if refusal is not None:
            page = self.sign_in_page if kind == LOGIN and _browser(scope) else None
            await _refuse(refusal, scope, receive, send, page=page)
            return
        await self._capped(scope, receive, send, cap)

    def _refusal(self, scope: Scope, kind: str | None, cap: int) -> MobiliseError | None:
        headers = Headers(scope=scope)
        if kind == SIGN:
            refused = _foreign_origin(headers, self.origins)
            if refused is not None:
                return refused
        if scope["method"] == "POST" and scope["path"].startswith(STAFF_PREFIX):
            # Sign-in, sign-out, previews: another site's page posting a staff member's
            # browser into them (login CSRF) is refused, whatever the cookie's SameSite.
            refused = _foreign_origin(
                headers, self.own_origins, what="dashboard forms", hint="use this site's pages"
            )
            if refused is not None:
                return refused
        buckets = self.buckets.get(kind or "")
        if buckets is not None:
            wait = buckets.take(client_key(scope), self.clock().timestamp())
            if wait:
                return TooManyRequests(
                    "too many requests from your address",
                    retry_after=wait,
                    hint=f"try again in {wait} s",
                )
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            return _too_large(cap)
        return None

    async def _capped(self, scope: Scope, receive: Receive, send: Send, cap: int) -> None:
        """Run the app with a body that stops at `cap`: past it, answer 413 at once and tell
        the app the client left (it stops reading, and whatever it answers is dropped)."""
        seen = 0
        refused = started = False

        async def receive_capped() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap:
                    refused = True
                    if not started:
                        await _refuse(_too_large(cap), scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def send_unless_refused(message: Message) -> None:
            nonlocal started
            if not refused:
                started = True
                await send(message)

        try:
            await self.app(scope, receive_capped, send_unless_refused)
        except Exception:
            if not refused:
                raise  # the app's own failure; a refused body's aftermath is not one


def _too_large(cap: int) -> TooLarge:
    return TooLarge(f"request body over {cap:,} bytes", hint="send less")


def _foreign_origin(
    headers: Headers,
    allowed: frozenset[str],
    *,
    what: str = "signatures",
    hint: str = "the site's origin must be in MOBILISE_ALLOWED_ORIGINS",
) -> Forbidden | None:
    """A browser names the page a form was posted from; a client that names none (a
    server, curl) is no cross-site form. `Origin: null` (a sandboxed page) is foreign."""
    origin = headers.get("origin")
    if origin is None:
        referer = headers.get("referer")
        if not referer:
            return None
        origin = origin_of(referer)
    origin = origin.strip().lower()
    own_host = urlsplit(origin).netloc
    if origin in allowed or (own_host and own_host == headers.get("host", "").lower()):
        return None
    return Forbidden(
        f"{what} posted from {origin or 'an unnamed page'} are not accepted", hint=hint
    )


def _browser(scope: Scope) -> bool:
    """A browser's request (it asks for HTML): it is answered with a page, not JSON."""
    return "text/html" in Headers(scope=scope).get("accept", "")


async def _refuse(
    error: MobiliseError,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    page: PageFor | None = None,
) -> None:
    accesslog.note(scope, f"{type(error).__name__}: {error.message}")
    response = (
        page(scope, error)
        if page is not None
        else JSONResponse(error.as_json(), error.status_code, headers=dict(error.headers))
    )
    await response(scope, receive, send)


class PetitionCors:
    """Starlette's CORS, for the public petition routes only: the allowed sites' pages may
    post signatures and read a petition's count with `fetch` (an NGO's own site showing
    it); nothing else is open to other origins."""

    def __init__(self, app: ASGIApp, *, origins: Iterable[str]) -> None:
        self.app = app
        listed = sorted(origins)
        self.signing = self._cors(app, listed, methods=["POST"])
        self.reading = self._cors(app, listed, methods=["GET"])

    @staticmethod
    def _cors(app: ASGIApp, origins: list[str], *, methods: list[str]) -> CORSMiddleware:
        return CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=methods,
            allow_headers=["content-type"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if SIGN_PATH.match(path):
            await self.signing(scope, receive, send)
        elif READ_PATH.match(path):
            await self.reading(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class SecurityHeaders:
    """The headers above on every response; a route's own value wins. `own_policy` pages
    (FastAPI's /docs, which loads Swagger UI from a CDN) only forbid framing."""

    def __init__(self, app: ASGIApp, *, own_policy: Iterable[str] = ()) -> None:
        self.app = app
        self.own_policy = frozenset(own_policy)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = _RELAXED if scope["path"] in self.own_policy else SECURITY

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_security_headers(message.get("headers", ()), added)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI, settings: Settings, clock: Callable[[], datetime]) -> None:
    """Add the guards, the security headers and the access log, outermost last. The sign-in
    limit's buckets are the application's (`app.state.sign_in_attempts`): a refused API key
    spends from them too (engine/api/staff.py)."""
    app.state.sign_in_attempts = sign_in = TokenBuckets(settings.login_rate_per_minute)
    app.add_middleware(
        Guards,
        settings=settings,
        clock=clock,
        sign_in=sign_in,
        sign_in_page=dashboard.refused_sign_in,
    )
    app.add_middleware(PetitionCors, origins=allowed_origins(settings))
    docs = (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url)
    app.add_middleware(SecurityHeaders, own_policy=[p for p in docs if p])
    app.add_middleware(accesslog.AccessLog)
