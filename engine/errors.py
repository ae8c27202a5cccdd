"""Errors are values users can act on: where, what, and a hint.

They carry their own HTTP status so that routers do not translate them, and the CLI
turns them into `file:line: message` lines and exit code 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class Problem:
    message: str
    file: str | None = None
    line: int | None = None
    field: str | None = None
    hint: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        text = f"{where}{self.message}"
        if self.field and not self.file:
            text = f"{self.field}: {text}"
        return f"{text} (hint: {self.hint})" if self.hint else text

    def as_json(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class MobiliseError(Exception):
    status_code = 400
    # Extra response headers (e.g. WWW-Authenticate on a 401).
    headers: Mapping[str, str] = MappingProxyType({})

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        field: str | None = None,
        problems: Sequence[Problem] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.field = field
        self.problems = list(problems) or [Problem(message, field=field, hint=hint)]

    def as_json(self) -> dict[str, object]:
        return {"error": self.message, "problems": [p.as_json() for p in self.problems]}


class NotFound(MobiliseError):
    status_code = 404


class Invalid(MobiliseError):
    status_code = 422


class Conflict(MobiliseError):
    """Well-formed, but contradicts what is recorded (a one-off gift said cancelled)."""

    status_code = 409


class UnsupportedMediaType(MobiliseError):
    status_code = 415


class Forbidden(MobiliseError):
    status_code = 403


class Unauthorized(MobiliseError):
    status_code = 401


class Unavailable(MobiliseError):
    status_code = 503
    # Nothing was stored: the caller may simply try again, a little later.
    headers = MappingProxyType({"Retry-After": "5"})


class TooLarge(MobiliseError):
    status_code = 413


class TooManyRequests(MobiliseError):
    status_code = 429

    def __init__(self, message: str, *, retry_after: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.headers = MappingProxyType({"Retry-After": str(retry_after)})
