"""The hot routes served without FastAPI's routing, dependency solving and per-route
wrappers, which cost more CPU than the work itself: signing
(`POST /api/petitions/{slug}/signatures`: 190 -> 107 us a request in process) and click
redirects (`GET /c/{token}`), bench/README.md.

Each is still declared on its router, with the same handler, so that OpenAPI documents
it. `FastPaths` sits inside the guards, the security headers and the access log (which
read the route's template from `scope["route"]`), so those apply to it as to any route;
errors go to the application's own exception handlers. Each request served is counted in
`traffic`: the periodic passes of the process make way during a burst (engine/make_way.py).

`App`'s `outermost` routes (click redirects) come before any middleware: the nine layers
(Starlette's error and exception middleware, FastAPI's, the guards, CORS, the security
headers, the access log) cost a click more than its token and its queue. What those
layers do for such a route is done here: the security headers, the access line (written
when the process has a moment: accesslog.Later), the application's exception handlers
(and for a crash, its 500 with the headers, raised on to be logged as Starlette's
outermost middleware does). A request that declares a body
goes the whole way, so that the guards' body cap answers it (such a route reads none).
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from engine.api import accesslog, guards
from engine.make_way import Traffic

Handler = Callable[[Request], Awaitable[Response]]
_ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]


@dataclass(frozen=True)
class FastRoute:
    method: str
    path: str  # the declared template, for the access log (engine/api/accesslog.py)
    pattern: re.Pattern[str]  # one group per path parameter, in order
    handler: Handler

    @cached_property
    def names(self) -> list[str]:
        """The path parameters' names, in order."""
        return re.findall(r"\{(\w+)\}", self.path)


class FastPaths:
    """ASGI middleware: serves `routes` itself, anything else goes on to the app."""

    def __init__(self, app: ASGIApp, *, routes: Sequence[FastRoute], traffic: Traffic) -> None:
        self.app = app
        self.traffic = traffic
        self.routes = tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        taken = _match(self.routes, scope)
        if taken is not None:
            await self._serve(*taken, scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _serve(
        self, route: FastRoute, found: re.Match[str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        self.traffic.count()
        _route_of(scope, route, found)
        request = Request(scope, receive, send)
        try:
            response = await route.handler(request)
        except ClientDisconnect:
            return  # nobody to answer; nothing was queued
        except Exception as exc:
            handler = _handler_for(request, exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)


class App(FastAPI):
    """FastAPI that serves its `outermost` routes before its middleware (above)."""

    def __init__(
        self,
        *,
        outermost: Sequence[FastRoute] = (),
        traffic: Traffic,
        lines: accesslog.Later | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.outermost = tuple(outermost)
        self.traffic = traffic
        self.lines = lines or accesslog.Later()  # the outermost routes' access lines

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        taken = _match(self.outermost, scope)
        if taken is not None and not _declares_body(scope):
            await self._serve(*taken, scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def _serve(
        self, route: FastRoute, found: re.Match[str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        started = time.perf_counter()
        self.traffic.count()
        scope["app"] = self
        _route_of(scope, route, found)
        request = Request(scope, receive, send)
        status = 500
        crash: Exception | None = None
        try:
            try:
                response = await route.handler(request)
            except ClientDisconnect:
                return
            except Exception as exc:
                handler = _handler_for(request, exc)
                if handler is None:  # the 500 Starlette's outermost middleware would send
                    crash, handler = exc, request.app.exception_handlers[Exception]
                    accesslog.note(scope, f"unhandled {type(exc).__name__}")
                response = await handler(request, exc)
            status = response.status_code
            headers = guards.with_security_headers(response.raw_headers)
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": response.body})
        finally:
            self.lines.line(scope, status, (time.perf_counter() - started) * 1000)
        if crash is not None:
            raise crash


def _match(routes: Sequence[FastRoute], scope: Scope) -> tuple[FastRoute, re.Match[str]] | None:
    """The route that takes this request, and its path's match; None for the app."""
    if scope["type"] != "http":
        return None
    method, path = scope["method"], scope["path"]
    for route in routes:
        found = route.pattern.match(path) if method == route.method else None
        if found is not None:
            return route, found
    return None


def _declares_body(scope: Scope) -> bool:
    return any(name in _BODY_HEADERS for name, _ in scope["headers"])


_BODY_HEADERS = frozenset((b"content-length", b"transfer-encoding"))


def _route_of(scope: Scope, route: FastRoute, found: re.Match[str]) -> None:
    """What routing would have put in the scope: the access log reads the template."""
    scope["path_params"] = dict(zip(route.names, found.groups(), strict=True))
    scope["route"] = route


def _handler_for(request: Request, exc: Exception) -> _ExceptionHandler | None:
    """The handler FastAPI's routing would call. Not the one for `Exception`: Starlette's
    outermost middleware calls that for a crash and raises it on, to be logged."""
    handlers: dict[type[Exception], _ExceptionHandler] = request.app.exception_handlers
    return next(
        (handlers[c] for c in type(exc).__mro__ if c in handlers and c is not Exception), None
    )
