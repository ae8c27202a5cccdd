from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from engine.api.deps import get_sessions

router = APIRouter(tags=["health"])


_STATUS = {
    "type": "object",
    "properties": {"status": {"type": "string"}, "database": {"type": "string"}},
    "required": ["status", "database"],
}


@router.get(
    "/healthz",
    responses={
        200: {"description": "up", "content": {"application/json": {"schema": _STATUS}}},
        503: {
            "description": "the database does not answer",
            "content": {"application/json": {"schema": _STATUS}},
        },
    },
)
def healthz(request: Request) -> JSONResponse:
    """Liveness and database reachability."""
    try:
        with get_sessions(request)() as session:
            session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return JSONResponse({"status": "degraded", "database": type(exc).__name__}, 503)
    return JSONResponse({"status": "ok", "database": "ok"})
