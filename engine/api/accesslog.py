"""One structured log line per request: method, path, status, duration, and for a refusal
or a failure its reason.

The line never carries a query string, an address, a token or a client address: the path
is the route's template with only harmless values filled in (a slug, a template name, an
id), so `/u/{token}` stays `/u/{token}`. Logger `engine.api.access`: INFO below 400,
WARNING for 4xx, ERROR for 5xx; the fields are also record attributes (`method`, `path`,
`status`, `duration_ms`, `reason`) for a JSON formatter.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable, MutableMapping
from functools import cache
from typing import Any

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("engine.api.access")

_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
# A value shown in the log: slugs, template names, numeric ids. Anything else (an address,
# a token) stays as its placeholder.
_HARMLESS = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
# In a path no route took, any other segment (a token? an address?) is masked.
_PLAIN = re.compile(r"^[a-z0-9.-]{0,100}$")
_REASON = "log_reason"


def note(where: HTTPConnection | Scope, reason: str) -> None:
    """Say why this request was refused or failed; the access line carries it."""
    scope = where.scope if isinstance(where, HTTPConnection) else where
    scope.setdefault("state", {})[_REASON] = reason


def database_error(exc: BaseException) -> str:
    """The driver's own error, first line only: a statement's parameters never reach a log."""
    cause = getattr(exc, "orig", None) or exc
    first = (str(cause).splitlines() or [""])[0]
    return f"{type(cause).__name__}: {first[:200]}"


def logged_path(scope: Scope) -> str:
    template = getattr(scope.get("route"), "path", None)
    if isinstance(template, str):
        if _masked(template):
            return template
        values: dict[str, Any] = scope.get("path_params", {})

        def fill(found: re.Match[str]) -> str:
            value = str(values.get(found.group(1), ""))
            harmless = "token" not in found.group(1) and _HARMLESS.match(value)
            return value if harmless else found.group(0)

        return _PARAM.sub(fill, template)
    return "/".join(part if _PLAIN.match(part) else "…" for part in str(scope["path"]).split("/"))


@cache
def _masked(template: str) -> bool:
    """Whether every value of this route's path stays a placeholder (`/c/{token}`): its
    template is then the logged path, with no substitution to make a request."""
    return all("token" in name for name in _PARAM.findall(template))


class AccessLog:
    def __init__(self, app: ASGIApp, *, timer: Callable[[], float] = time.perf_counter) -> None:
        self.app = app
        self.timer = timer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = self.timer()
        status = 500

        async def send_seen(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_seen)
        except BaseException as exc:
            state: MutableMapping[str, Any] = scope.setdefault("state", {})
            state.setdefault(_REASON, f"unhandled {type(exc).__name__}")
            raise
        finally:
            line(scope, status, (self.timer() - started) * 1000)


def line(scope: Scope, status: int, duration_ms: float) -> None:
    """Log the request's line."""
    record = _record(scope, status, duration_ms)
    if record is not None:
        log.handle(record)


class Later:
    """The access lines of a route served before the middleware (click redirects,
    engine/api/fastpath.py), each dated as its request ends, made and written when the
    process has a moment.

    Under load the clicks' process alternates between answering requests and waiting for
    the database to commit their batch; writing a line (formatting, the handler, the
    write) in the first cost a click 35 µs of 140, in the second nothing: the click writer
    has `flush` called while its batch's statement runs (`meanwhile`, engine/track/
    clicks.py), and lines held longer than `at_most_s` are written then. At rest
    (`busy` false: the last batch held one click, nothing waits, nothing is being
    written) a line is written at once, after any still held, so that lines keep their
    order. What is held when the process stops is written then; a crash loses at most
    the lines of the last `at_most_s`."""

    def __init__(
        self,
        busy: Callable[[], bool] = lambda: False,
        at_most_s: float = 0.05,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.busy = busy
        self.at_most_s = at_most_s
        self.clock = clock
        # (when, scope, status, duration): the record is made when written, dated then
        self._held: list[tuple[float, Scope, int, float]] = []
        self._timer: asyncio.TimerHandle | None = None

    def line(self, scope: Scope, status: int, duration_ms: float) -> None:
        self._held.append((self.clock(), scope, status, duration_ms))
        if not self.busy():
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.at_most_s, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        held, self._held = self._held, []
        for when, scope, status, duration_ms in held:
            record = _record(scope, status, duration_ms)
            if record is not None:
                # Dated when its request ended, as `line` would have (LogRecord's fields).
                record.relativeCreated -= (record.created - when) * 1000
                record.created, record.msecs = when, int((when - int(when)) * 1000) + 0.0
                log.handle(record)


def _record(scope: Scope, status: int, duration_ms: float) -> logging.LogRecord | None:
    """The request's line as a record, or None if its level is not logged."""
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    if not log.isEnabledFor(level):
        return None
    method, path, duration = scope["method"], logged_path(scope), round(duration_ms, 1)
    # No quoting needed: a method is a word and a logged path has no spaces (see above).
    text = f"method={method} path={path} status={status} duration_ms={duration}"
    fields: dict[str, Any] = {
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": duration,
    }
    reason = scope.get("state", {}).get(_REASON)
    if reason is not None:
        fields["reason"] = reason
        text += f" reason={json.dumps(reason, ensure_ascii=False)}"
    # The record made directly: `Logger.log` would first walk the stack for the caller's
    # file and line, which this line does not need (it always comes from here); on a click
    # redirect every microsecond shows (bench/README.md).
    return log.makeRecord(log.name, level, __file__, 0, text, (), None, extra=fields)


def configure() -> None:
    """Logs to stderr at INFO, unless the host process has set logging up already.

    APScheduler says at INFO when each job runs and ends: the dispatch pass every 10 s
    would bury the one line per request under two of its own. Its warnings and errors
    (a job missed, a job that raised) still show."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
