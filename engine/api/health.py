from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from engine.api import accesslog
from engine.api.deps import get_sessions

router = APIRouter(tags=["health"])

# A real write that changes nothing, rolled back: a database that answers reads but refuses
# writes (a read-only file, a standby, a full disk's refusals) is not healthy, since every
# signature would fail. `alembic_version` has one row on every migrated database.
_WRITE_PROBE = text("UPDATE alembic_version SET version_num = version_num")


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
            "description": "the database does not answer, or refuses writes",
            "content": {"application/json": {"schema": _STATUS}},
        },
    },
)
def healthz(request: Request) -> JSONResponse:
    """Liveness, and whether the database accepts a write."""
    try:
        with get_sessions(request)() as session:
            session.execute(_WRITE_PROBE)
            session.rollback()
    except SQLAlchemyError as exc:
        accesslog.note(request, f"database refuses writes: {accesslog.database_error(exc)}")
        return JSONResponse({"status": "degraded", "database": type(exc).__name__}, 503)
    return JSONResponse({"status": "ok", "database": "ok"})
