"""`GET /api/journeys/{id}/stats`: a journey's funnel, A/B verdicts and milestones, or its
figures per declared segment (`?by=segment`), as JSON or CSV (fundraiser key and up)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from engine import declarations
from engine.api.deps import AppSettings, DbSession
from engine.api.staff import ApiFundraiser
from engine.errors import Invalid
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
    request: Request,
    session: DbSession,
    settings: AppSettings,
    _who: ApiFundraiser,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
    by: Annotated[Literal["step", "segment"], Query()] = "step",
) -> Any:
    """Per step and variant: sent, delivered, bounced, unsubscribed, clickers, click rate,
    donors, gifts, conversion rate, one-off and monthly revenue (annualised apart), revenue
    per 1,000 emails; per milestone what its email produced; A/B verdicts. With
    `by=segment`, the same figures of the journey's emails to each declared segment's
    people (segments/*.yaml, membership as of now)."""
    if by == "segment":
        declared = declarations.read_segments(settings.project_dir / "segments")
        if declared.problems:
            raise Invalid(
                "the declared segments have problems",
                problems=declared.problems,
                hint="run `mobilise validate`",
            )
        found = report.by_segment(
            session, journey_id, declared.segments, now=request.app.state.clock()
        )
        if format == "csv":
            return _csv(export.segments_csv([found]), f"{journey_id}-segments.csv")
        return export.segments_json(found)
    stats = report.for_journey(session, journey_id)
    if format == "csv":
        return _csv(export.as_csv([stats]), f"{journey_id}-stats.csv")
    return export.as_json(stats)


def _csv(text: str, name: str) -> Response:
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
