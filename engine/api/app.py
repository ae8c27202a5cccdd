"""The application factory: settings in, FastAPI app out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DBAPIError, InternalError, OperationalError
from starlette.exceptions import HTTPException

from engine.api import (
    accesslog,
    confirmations,
    dashboard,
    donations,
    fastpath,
    guards,
    health,
    petitions,
    public,
    responses,
    rights,
    stats,
    supporters,
    templates,
    tracking,
    webhooks,
)
from engine.api.staff import SignInRequired
from engine.config import Settings, get_settings
from engine.errors import Invalid, MobiliseError
from engine.intake.signature_queue import SignatureQueue
from engine.make_way import Traffic, busy_above
from engine.periodic import Passes
from engine.render.library import TemplateLibrary
from engine.scheduler import scheduler
from engine.send.identity import for_sending, templates_dir
from engine.store.db import make_engine, make_sessionmaker
from engine.track import sendgrid_events
from engine.track.clicks import ClickWriter

_UNAVAILABLE = "database unavailable, try again shortly"
_READ_ONLY = "the database refuses writes (read-only): nothing was stored, try again shortly"
# PostgreSQL's read_only_sql_transaction (a standby, default_transaction_read_only);
# SQLite's own words for a read-only file.
_READ_ONLY_STATE = "25006"
_READ_ONLY_SQLITE = "readonly database"


def refuses_writes(exc: DBAPIError) -> bool:
    """Whether a database error is a write refused by a read-only database."""
    state = getattr(exc.orig, "sqlstate", None)
    return state == _READ_ONLY_STATE or _READ_ONLY_SQLITE in str(exc.orig)


def _wall_clock() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings | None = None, *, clock: Callable[[], datetime] = _wall_clock
) -> FastAPI:
    settings = settings or get_settings()
    sendgrid_events.check_public_key(settings.sendgrid_webhook_public_key)  # fail at start-up
    engine = make_engine(settings.database_url)

    sessions = make_sessionmaker(engine)
    traffic = Traffic()  # the hot requests answered: the passes make way during a burst
    signing = SignatureQueue(
        sessions,
        clock=clock,
        secret=settings.keys,
        max_batch=settings.sign_batch_max,
        wait_s=settings.sign_batch_wait_ms / 1000,
        confirm_days=settings.confirm_days,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        signing.start()
        recording.start()
        # Each API process may run its own: one of them at a time runs the journey pass,
        # and they share the sending (engine/scheduler.py).
        passes = Passes(settings, sessions)
        busy = busy_above(traffic, settings.passes_yield_above)
        scheduled = scheduler(passes, blocking=False, busy=busy) if settings.scheduler else None
        if scheduled is not None:
            scheduled.jobs.start()
            # A signer is thanked within seconds, not at the next journey pass (60 s).
            signing.on_signed = scheduled.wake["journeys"]
            signing.on_confirmation = scheduled.wake["dispatch"]
        app.state.scheduler = scheduled.jobs if scheduled is not None else None
        app.state.passes = passes
        yield
        if scheduled is not None:
            passes.stopping.set()  # a dispatch pass ends after its batch, not the queue
            scheduled.jobs.shutdown()
        await signing.stop()
        await recording.stop()
        lines.flush()
        engine.dispose()

    # The click redirects' access lines, written while their batches wait for the database.
    lines = accesslog.Later(busy=lambda: recording.busy)
    app = fastpath.App(
        # Served before the middleware, which it does the work of (engine/api/fastpath.py).
        outermost=[fastpath.FastRoute("GET", "/c/{token}", tracking.CLICK_PATH, tracking.click)],
        traffic=traffic,
        lines=lines,
        title="Mobilise",
        version="0.1.0",
        lifespan=lifespan,
        # Mobilise exports no OpenTelemetry data; left on, FastAPI looks for a configured
        # provider in the environment on every request (a quarter of a signature's CPU in
        # the route, bench/README.md).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = sessions
    app.state.signing = signing
    app.state.clock = clock
    # The organisation and addresses (refused in production while placeholders remain).
    app.state.identity = identity = for_sending(settings)
    # One compile cache for the process: each template version compiles once.
    app.state.templates = TemplateLibrary(templates_dir(settings), site=identity.site)
    app.state.clicks = recording = ClickWriter(
        engine,
        meanwhile=lines.flush,
        clock=clock,
        secret=settings.keys,
        # organisation.yaml's page, or MOBILISE_DONATION_URL (engine/send/identity.py)
        donation_url=identity.donation_url,
        burst=settings.automated_click_window,
    )

    @app.exception_handler(MobiliseError)
    async def _domain_error(request: Request, exc: MobiliseError) -> Response:
        # A 4xx message may quote what the client sent; a 5xx one is ours.
        said = exc.message if exc.status_code >= 500 else f"{len(exc.problems)} problem(s)"
        accesslog.note(request, f"{type(exc).__name__}: {said}")
        if request.url.path.startswith("/dashboard"):
            return dashboard.error_page(request, exc)
        if public.wants_page(request):
            return public.refused_page(request, exc)
        return JSONResponse(exc.as_json(), status_code=exc.status_code, headers=dict(exc.headers))

    @app.exception_handler(SignInRequired)
    async def _sign_in(_request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse(f"/dashboard/login?next={quote(exc.next_path)}", status_code=303)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InternalError)
    async def _database_down(request: Request, exc: DBAPIError) -> JSONResponse:
        # Nothing was stored: callers (browsers, SendGrid's webhook) may simply retry.
        if refuses_writes(exc):  # a standby, a read-only file: /healthz says so too
            what, error = "database refuses writes", _READ_ONLY
        elif isinstance(exc, OperationalError):
            what, error = "database unavailable", _UNAVAILABLE
        else:
            raise exc  # PostgreSQL's other internal errors are ours: a 500
        accesslog.note(request, f"{what}: {accesslog.database_error(exc)}")
        return JSONResponse({"error": error}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _server_error(request: Request, exc: Exception) -> JSONResponse:
        # Starlette's outermost middleware answers with this, outside the security
        # headers' middleware: they are set here.
        return JSONResponse(
            {"error": "internal error"}, status_code=500, headers=guards.SECURITY_HEADERS
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]}
            for e in exc.errors()
        ]
        accesslog.note(request, f"invalid input, {len(problems)} problem(s)")
        return JSONResponse({"error": "invalid input", "problems": problems}, status_code=422)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 400:  # FastAPI could not parse the body (JSON or form)
            unreadable = Invalid(f"body: {exc.detail}", field="body")
            return JSONResponse(unreadable.as_json(), status_code=unreadable.status_code)
        if exc.status_code == 405:
            allow = ", ".join(responses.allowed_methods(app, request.scope))
            exc.headers = {**(exc.headers or {}), "Allow": allow}
        return await http_exception_handler(request, exc)

    app.add_middleware(
        fastpath.FastPaths,
        routes=[
            fastpath.FastRoute(
                "POST", petitions.SIGN_TEMPLATE, petitions.SIGN_PATH, petitions.sign
            ),
        ],
        traffic=traffic,
    )
    guards.install(app, settings, clock)
    app.include_router(health.router)
    app.include_router(petitions.router)
    app.include_router(tracking.router)
    app.include_router(webhooks.router)
    app.include_router(donations.router)
    app.include_router(templates.router)
    app.include_router(supporters.router)
    app.include_router(rights.router)
    app.include_router(confirmations.router)
    app.include_router(stats.router)
    app.include_router(dashboard.router)
    app.include_router(public.router)
    # The project's static/ (images) and Mobilise's own files (the dashboard's scripts and
    # styles, Chart.js vendored from npm; the public pages'): nothing from a CDN.
    public.mount(app, settings.project_dir / "static")
    responses.document_handlers(app)
    return app


def create_default_app() -> FastAPI:
    """Uvicorn factory entry point (`engine.api.app:create_default_app`)."""
    accesslog.configure()
    return create_app()
