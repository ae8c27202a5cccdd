"""What the API answers besides success, documented once: the error body every error
handler writes, and the statuses the application's own handlers add to every route (so
that `/openapi.json` lists every status a route can answer, and clients generated from it
know them)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.routing import Match
from starlette.types import Scope


class ProblemRead(BaseModel):
    message: str
    field: str | None = None
    hint: str | None = None
    file: str | None = None
    line: int | None = None


class ErrorRead(BaseModel):
    """Every error answered as JSON (engine.errors.MobiliseError and the validation handler)."""

    error: str
    problems: list[ProblemRead]


def errors(described: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status with its meaning and the error body."""
    return {status: {"description": text, "model": ErrorRead} for status, text in described.items()}


def document_handlers(app: FastAPI) -> None:
    """Add to every documented operation the statuses the application's handlers answer:
    503 when the database is down (every route reads it), 401 and 403 where an API key is
    required, and 422 in our error body where
    FastAPI validates parameters or a body (it documents its own body, which the validation
    handler in engine.api.app replaces). FastAPI's way to extend its OpenAPI document."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for name, definition in _ERROR_SCHEMAS.items():
                schemas.setdefault(name, definition)
            for operations in document.get("paths", {}).values():
                for operation in operations.values():
                    answers = operation.setdefault("responses", {})
                    if "422" in answers:
                        answers["422"] = _response(answers["422"].get("description", _INVALID))
                    answers.setdefault("503", _UNAVAILABLE)
                    if operation.get("security"):  # an API key (engine.api.staff.api_staff)
                        answers.setdefault("401", _response("no valid API key"))
                        answers.setdefault("403", _response("the key's role is too low"))
                        answers.setdefault("429", _response(_REFUSED_KEYS))
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorRead"}}},
    }


_INVALID = "invalid input: each problem names its field"
_REFUSED_KEYS = "too many refused keys from this address (the sign-in limit); see Retry-After"
_ERROR_SCHEMAS = models_json_schema(
    [(ErrorRead, "serialization")], ref_template="#/components/schemas/{model}"
)[1]["$defs"]
_UNAVAILABLE: dict[str, Any] = {
    **_response("database unavailable: nothing was stored, try again shortly"),
    "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
}
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route serves at this path (Starlette's 405 names only those of the
    first route matching it: `GET /u/{token}` hid `POST /u/{token}`)."""
    return [
        method
        for method in _METHODS
        if any(r.matches({**scope, "method": method})[0] == Match.FULL for r in app.router.routes)
    ]
