"""`GET /api/journeys/{id}/stats`: a journey's funnel, A/B verdicts and milestones, as JSON
or CSV (fundraiser key and up)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from engine.api.deps import DbSession
from engine.api.staff import ApiFundraiser
from engine.stats import export, report

router = APIRouter(prefix="/api/journeys", tags=["stats"])


@router.get(
    "/{journey_id}/stats",
    responses={
        200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with ?format=csv"},
        404: {"description": "no such journey"},
    },
)
def journey_stats(
    journey_id: str,
    session: DbSession,
    _who: ApiFundraiser,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Any:
    """Per step and variant: sent, delivered, bounced, unsubscribed, clickers, click rate,
    donors, gifts, conversion rate, one-off and monthly revenue (annualised apart), revenue
    per 1,000 emails; per milestone what its email produced; A/B verdicts."""
    stats = report.for_journey(session, journey_id)
    if format == "csv":
        return Response(
            export.as_csv([stats]),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{journey_id}-stats.csv"'},
        )
    return export.as_json(stats)
