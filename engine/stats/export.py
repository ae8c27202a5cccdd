"""A journey's figures as JSON, CSV and a text table: the API, the CLI and the dashboard
print the same numbers. Amounts are integer cents in JSON and euros in CSV and tables;
CSV cells are neutralised against spreadsheet formulas."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from typing import Any

from engine.rules.tabular import safe_cell
from engine.stats.figures import JourneyStats, Line, SegmentStats, StepView


def line_json(line: Line) -> dict[str, Any]:
    figures = asdict(line.figures)
    return {
        **figures,
        "click_rate": line.click_rate,
        "conversion_rate": line.conversion_rate,
        "monthly_annualised_cents": line.monthly_annualised_cents,
        "per_1000_emails_cents": {
            "one_off": line.one_off_per_thousand_cents,
            "monthly_annualised": line.monthly_annualised_per_thousand_cents,
        },
    }


def _step_json(step: StepView) -> dict[str, Any]:
    return {
        "id": step.id,
        "kind": step.kind,
        "label": step.label,
        "targets": step.targets,
        "people_here": step.people_here,
        "milestone": step.milestone,
        "figures": line_json(step.total) if step.total is not None else None,
        "variants": [{"variant": v.variant, **line_json(v)} for v in step.variants],
    }


def as_json(stats: JourneyStats) -> dict[str, Any]:
    return {
        "journey": stats.journey_id,
        "title": stats.title,
        "petition": {"slug": stats.petition, "signatures": stats.signatures},
        "totals": line_json(stats.total),
        "steps": [_step_json(s) for s in stats.steps],
        "milestones": [
            {
                "threshold": m.threshold,
                "reached_at": m.reached_at.isoformat() if m.reached_at else None,
                "email_step": m.step_id,
                "produced": line_json(m.produced) if m.produced is not None else None,
            }
            for m in stats.milestones
        ],
        "ab": [
            {
                "step": r.step_id,
                "metric": r.verdict.metric,
                "control": asdict(r.verdict.control),
                "challenger": asdict(r.verdict.challenger),
                "points": r.verdict.points,
                "z": r.verdict.z,
                "p_value": r.verdict.p_value,
                "significant": r.verdict.significant,
                "more_sends_per_variant": r.verdict.more_sends_per_variant,
                "verdict": r.verdict.sentence,
            }
            for r in stats.ab
        ],
        "signatures_by_day": [
            {"day": d.day.isoformat(), "signatures": d.signatures, "total": d.total}
            for d in stats.days
        ],
        "unattributed_gifts": {
            "gifts": stats.unattributed.gifts,
            "one_off_cents": stats.unattributed.one_off_cents,
            "monthly_cents": stats.unattributed.monthly_cents,
        },
    }


FIGURE_COLUMNS = (
    "sent", "delivered", "bounced", "unsubscribed", "clickers", "clicks", "click_rate",
    "donors", "gifts", "conversion_rate", "one_off_eur", "monthly_eur",
    "monthly_annualised_eur", "one_off_per_1000_emails_eur",
    "monthly_annualised_per_1000_emails_eur",
)  # fmt: skip
COLUMNS = ("journey", "step", "variant", "milestone", *FIGURE_COLUMNS, "ab_verdict")
SEGMENT_COLUMNS = ("journey", "segment", *FIGURE_COLUMNS)


def _euros(cents: int | None) -> str:
    return "" if cents is None else f"{cents / 100:.2f}"


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _cells(line: Line) -> list[str]:
    """A line's figures, in the order of FIGURE_COLUMNS."""
    f = line.figures
    return [
        str(f.sent), str(f.delivered), str(f.bounced), str(f.unsubscribed),
        str(f.clickers), str(f.clicks), _ratio(line.click_rate), str(f.donors),
        str(f.gifts), _ratio(line.conversion_rate), _euros(f.one_off_cents),
        _euros(f.monthly_cents), _euros(line.monthly_annualised_cents),
        _euros(line.one_off_per_thousand_cents),
        _euros(line.monthly_annualised_per_thousand_cents),
    ]  # fmt: skip


def rows(stats: JourneyStats) -> Iterator[list[str]]:
    """One row per send step (variant empty: all variants) and per variant."""
    said = {}
    for result in stats.ab:
        if result.verdict.metric == "gift rate":
            said[(result.step_id, result.verdict.challenger.name)] = result.verdict.sentence
    for step in stats.steps:
        if step.total is None:
            continue
        for line in [step.total, *step.variants]:
            yield [
                stats.journey_id, step.id, line.variant or "",
                "" if step.milestone is None else str(step.milestone),
                *_cells(line),
                said.get((step.id, line.variant or ""), ""),
            ]  # fmt: skip


def _csv(header: tuple[str, ...], body: Iterable[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in body:
        writer.writerow([safe_cell(cell) for cell in row])
    return out.getvalue()


def as_csv(many: list[JourneyStats]) -> str:
    return _csv(COLUMNS, (row for stats in many for row in rows(stats)))


TABLE = ("step", "variant", "sent", "delivered", "bounced", "unsubscribed", "clickers",
         "clicks", "click_rate", "donors", "gifts", "conversion_rate", "one_off_eur",
         "monthly_annualised_eur", "one_off_per_1000_emails_eur")  # fmt: skip


def _fixed_width(header: tuple[str, ...], body: list[list[str]]) -> list[str]:
    widths = [max([len(h), *(len(r[i]) for r in body)]) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    return lines + ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in body]


def as_table(stats: JourneyStats) -> str:
    """A fixed-width table for a terminal, then the milestones and the A/B verdicts."""
    picked = [COLUMNS.index(name) for name in TABLE]
    body = [[row[i] for i in picked] for row in rows(stats)]
    lines = [f"{stats.journey_id}: {stats.signatures:,} signatures on {stats.petition}"]
    lines += _fixed_width(TABLE, body)
    for m in stats.milestones:
        reached = f"reached {m.reached_at:%Y-%m-%d}" if m.reached_at else "not reached"
        made = ""
        if m.produced is not None:
            f = m.produced.figures
            made = f"; {m.step_id}: {f.sent} sent, {f.donors} donors, {_euros(f.one_off_cents)} EUR"
        lines.append(f"milestone {m.threshold:,}: {reached}{made}")
    lines += [f"A/B {r.step_id}: {r.verdict.sentence}" for r in stats.ab]
    u = stats.unattributed
    lines.append(
        f"gifts no email is credited with (all journeys): {u.gifts}, "
        f"{_euros(u.one_off_cents)} EUR one-off, {_euros(u.monthly_cents)} EUR a month"
    )
    return "\n".join(lines) + "\n"


# --- per segment (`?by=segment`, `mobilise stats --by segment`)


def segments_json(stats: SegmentStats) -> dict[str, Any]:
    return {
        "journey": stats.journey_id,
        "at": stats.at.isoformat(),
        "segments": [
            {"segment": s.segment, "description": s.description, **line_json(s.line)}
            for s in stats.segments
        ],
    }


def segment_rows(stats: SegmentStats) -> Iterator[list[str]]:
    for s in stats.segments:
        yield [stats.journey_id, s.segment, *_cells(s.line)]


def segments_csv(many: list[SegmentStats]) -> str:
    return _csv(SEGMENT_COLUMNS, (row for stats in many for row in segment_rows(stats)))


SEGMENT_TABLE = ("segment", *[c for c in TABLE if c not in ("step", "variant")])


def segments_table(stats: SegmentStats) -> str:
    picked = [SEGMENT_COLUMNS.index(name) for name in SEGMENT_TABLE]
    body = [[row[i] for i in picked] for row in segment_rows(stats)]
    head = (
        f"{stats.journey_id}: emails to each segment's people (as of {stats.at:%Y-%m-%d %H:%M} UTC)"
    )
    return "\n".join([head, *_fixed_width(SEGMENT_TABLE, body)]) + "\n"
