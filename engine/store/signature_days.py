"""Signatures per UTC day (`signature_days`, what a funnel's curve reads): the SQL that
adds a batch's signatures to their days, and the one day expression it and the recount
(engine.store.recounts) share. The statements run in engine.store.signatures."""

from __future__ import annotations

DIALECTS = ("postgresql", "sqlite")
_UTC_DAY = {"postgresql": "date(timezone('UTC', {}))", "sqlite": "date({})"}


def utc_day(dialect: str, column: str) -> str:
    """SQL for the UTC day of a timestamp column (SQLite stores UTC text)."""
    return _UTC_DAY[dialect].format(column)


def add_days(dialect: str, rows: str) -> str:
    """SQL adding the signatures of `rows` (a FROM item with `signed_at`), counted per UTC
    day, to petition `:pid`'s days."""
    day = utc_day(dialect, "signed_at")
    return (
        "INSERT INTO signature_days (petition_id, day, signatures) "
        f"SELECT :pid, {day}, count(*) FROM {rows} GROUP BY {day} "
        "ON CONFLICT (petition_id, day) DO UPDATE"
        " SET signatures = signature_days.signatures + excluded.signatures"
    )
