"""Segments (`segments/*.yaml`): a name, a description and one condition.

segment: donors
description: Gave at least once
where:
  donor: true
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from engine.errors import Problem
from engine.rules.conditions import Condition, InSegment, walk
from engine.rules.journeys import STEP_ID
from engine.rules.yaml_lines import load_model, locate


class SegmentDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    segment: str = Field(pattern=STEP_ID.pattern)
    description: str = ""
    where: Condition


def parse_segment(text: str, name: str) -> tuple[SegmentDef | None, list[Problem]]:
    segment, node, problems = load_model(text, name, SegmentDef)
    if segment is None:
        return None, problems
    journey_only = [
        c for c in walk(segment.where) if type(c).__name__ in ("DonatedSinceEntry", "ClickedStep")
    ]
    if journey_only:
        problems.append(
            Problem(
                "donated_since_entry and clicked_step only make sense inside a journey",
                file=name,
                line=locate(node, ["where"]),
            )
        )
    return segment, problems


def references(condition: Condition) -> set[str]:
    return {c.segment for c in walk(condition) if isinstance(c, InSegment)}


def check_references(segments: Mapping[str, SegmentDef], files: Mapping[str, str]) -> list[Problem]:
    """Unknown segment names and cycles (`a` uses `b` uses `a`) between segment files."""
    problems = []
    for name, segment in segments.items():
        for ref in sorted(references(segment.where)):
            if ref not in segments:
                problems.append(Problem(f"unknown segment '{ref}'", file=files.get(name)))
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(name: str) -> bool:
        if name in done or name not in segments:
            return False
        if name in visiting:
            return True
        visiting.add(name)
        looped = any(visit(ref) for ref in references(segments[name].where))
        visiting.discard(name)
        done.add(name)
        return looped

    for name in sorted(segments):
        if visit(name):
            problems.append(
                Problem(f"segment '{name}' refers back to itself", file=files.get(name))
            )
    return problems
