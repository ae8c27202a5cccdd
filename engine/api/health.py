from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from engine.api.deps import get_sessions

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(request: Request) -> JSONResponse:
    """Liveness and database reachability."""
    try:
        with get_sessions(request)() as session:
            session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return JSONResponse({"status": "degraded", "database": type(exc).__name__}, 503)
    return JSONResponse({"status": "ok", "database": "ok"})
