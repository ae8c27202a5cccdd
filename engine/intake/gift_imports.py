"""`mobilise import donations`: a payment platform's CSV export of gifts, recorded in batches
by engine.track.donations; rejected rows go to a CSV with line number, field and reason."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from engine.errors import Invalid, Problem
from engine.intake.csvfiles import (
    RejectsWriter,
    data_lines,
    read_headers,
    read_rows,
    refused_columns,
)
from engine.progress import QUIET, Progress
from engine.rules.gifts import GIFT_COLUMNS, GIFT_FIELDS, REQUIRED, GiftRow, gift_parser
from engine.rules.signature_rows import RowError
from engine.rules.tabular import shown
from engine.store import donations
from engine.store.donations import Recorded
from engine.track.donations import record_gifts

# Gift files are small next to signature files (a campaign's gifts are a few thousand):
# batches of this many rows, each committed on its own like signature imports.
BATCH = 1_000
_COLUMNS_HINT = (
    "columns: email, amount, currency, donated_at, frequency, external_id, reference,"
    " or their French names (docs/cli.md)"
)


@dataclass
class GiftReport:
    recorded: Recorded = field(default_factory=Recorded)
    rejected: int = 0
    rejects_file: Path | None = None
    # References given that we did not make: ignored, the gift attributed otherwise.
    unknown_references: int = 0

    def add(self, recorded: Recorded, unknown_references: int) -> None:
        self.recorded.add(recorded)
        self.unknown_references += unknown_references

    def summary(self) -> str:
        r = self.recorded
        unattributed = r.imported - r.by_reference - r.by_last_click
        lines = [
            f"imported {r.imported} / duplicates {r.duplicates} / rejected {self.rejected}",
            f"attributed: {r.by_reference} by reference, {r.by_last_click} by last click,"
            f" {unattributed} unattributed",
        ]
        if r.new_supporters:
            lines.append(
                f"new supporters (gave without signing; no consent, no campaign email):"
                f" {r.new_supporters}"
            )
        if self.unknown_references:
            lines.append(f"references not made by this installation: {self.unknown_references}")
        if self.rejects_file:
            lines.append(f"rejected rows: {self.rejects_file}")
        return "\n".join(lines)


def _checked_columns(path: Path) -> tuple[list[str], dict[str, int]]:
    headers, unknown, positions = read_headers(path, GIFT_COLUMNS, required_any=("email",))
    problems = refused_columns(unknown, GIFT_COLUMNS, hint=_COLUMNS_HINT)
    # `consent …` headers map to consent names, which a gift does not take.
    problems += [
        Problem(f"unknown column '{shown(headers[i])}'", hint=_COLUMNS_HINT)
        for name, i in positions.items()
        if name not in GIFT_FIELDS
    ]
    problems += [
        Problem(f"missing column '{name}'", hint=_COLUMNS_HINT)
        for name in REQUIRED
        if name not in positions
    ]
    if problems:
        problems = [Problem(p.message, file=str(path), line=1, hint=p.hint) for p in problems]
        raise Invalid(str(problems[0]), problems=problems)
    return headers, positions


def import_donations(
    sessions: sessionmaker[Session],
    *,
    path: Path,
    now: Callable[[], datetime],
    zone: ZoneInfo,
    secret: str,
    window: timedelta = donations.DEFAULT_WINDOW,
    rejects_path: Path | None = None,
    batch_size: int = BATCH,
    progress: Progress = QUIET,
) -> GiftReport:
    """Import a CSV of gifts; rejected rows go to a CSV with line number, field and reason.
    `progress` counts the file's lines as their batches are recorded."""
    headers, positions = _checked_columns(path)
    parse = gift_parser(positions, now=now(), zone=zone)
    _, _, _, rows = read_rows(path, GIFT_COLUMNS, required_any=("email",))
    report = GiftReport()
    rejects = RejectsWriter(rejects_path or path.with_suffix(".rejects.csv"), headers)
    batch: dict[str, GiftRow] = {}
    progress.phase("Importing donations", data_lines(path))
    shown = 1  # the header
    line = 1

    def flush() -> None:
        nonlocal shown
        with sessions.begin() as session:
            recorded, unknown = record_gifts(
                session, batch.values(), secret=secret, now=now(), window=window
            )
        report.add(recorded, unknown)
        batch.clear()
        progress.advance(line - shown)
        shown = line

    try:
        for row in rows:
            line = row.line
            if row.broken is not None:
                rejects.write(row, "row", row.broken)
                continue
            try:
                gift = parse(row.cells, row.line)
            except RowError as exc:
                rejects.write(row, exc.field, str(exc))
                continue
            if gift is None:
                continue
            if gift.external_id in batch:
                report.recorded.duplicates += 1
                continue
            batch[gift.external_id] = gift
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
    finally:
        rows.close()
        rejects.close()
    report.rejected = rejects.count
    report.rejects_file = rejects.path if rejects.count else None
    return report
