"""The hot routes served without FastAPI's routing, dependency solving and per-route
wrappers, which cost more CPU than the work itself: signing
(`POST /api/petitions/{slug}/signatures`: 190 -> 107 us a request in process) and click
redirects (`GET /c/{token}`), bench/README.md.

Each is still declared on its router, with the same handler, so that OpenAPI documents
it. `FastPaths` sits inside the guards, the security headers and the access log (which
read the route's template from `scope["route"]`), so those apply to it as to any route;
errors go to the application's own exception handlers. Each request served is counted in
`traffic`: the periodic passes of the process make way during a burst (engine/make_way.py).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from engine.make_way import Traffic

Handler = Callable[[Request], Awaitable[Response]]
_ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]


@dataclass(frozen=True)
class FastRoute:
    method: str
    path: str  # the declared template, for the access log (engine/api/accesslog.py)
    pattern: re.Pattern[str]  # one group per path parameter, in order
    handler: Handler


class FastPaths:
    """ASGI middleware: serves `routes` itself, anything else goes on to the app."""

    def __init__(self, app: ASGIApp, *, routes: Sequence[FastRoute], traffic: Traffic) -> None:
        self.app = app
        self.traffic = traffic
        self.routes = tuple(routes)
        self.names = {route: re.findall(r"\{(\w+)\}", route.path) for route in self.routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            method, path = scope["method"], scope["path"]
            for route in self.routes:
                found = route.pattern.match(path) if method == route.method else None
                if found is not None:
                    await self._serve(route, found, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _serve(
        self, route: FastRoute, found: re.Match[str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        self.traffic.count()
        scope["path_params"] = dict(zip(self.names[route], found.groups(), strict=True))
        scope["route"] = route
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


def _handler_for(request: Request, exc: Exception) -> _ExceptionHandler | None:
    """The handler FastAPI's routing would call. Not the one for `Exception`: Starlette's
    outermost middleware calls that for a crash and raises it on, to be logged."""
    handlers: dict[type[Exception], _ExceptionHandler] = request.app.exception_handlers
    return next(
        (handlers[c] for c in type(exc).__mro__ if c in handlers and c is not Exception), None
    )
