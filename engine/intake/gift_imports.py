"""`mobilise import donations`: a payment platform's CSV export of gifts, recorded in batches
by engine.track.donations; rejected rows go to a CSV with line number, field and reason.

A row may say what became of its gift (`status` refunded or cancelled): the gift is
recorded if new, then the batch's changes applied together, by the function the API's
refunds and cancellations use (a batch's refunds: one read, one statement). A file
imported again changes nothing a first time did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from engine.config import Secret
from engine.errors import Invalid, MobiliseError, Problem
from engine.intake.csvfiles import (
    CsvRow,
    RejectsWriter,
    data_lines,
    read_headers,
    read_rows,
    refused_columns,
)
from engine.progress import QUIET, Progress
from engine.rules.gifts import GIFT_COLUMNS, REQUIRED, ROW_FIELDS, Change, GiftRow, gift_parser
from engine.rules.signature_rows import RowError
from engine.rules.tabular import shown
from engine.store import donations
from engine.store.donations import Outcome, Recorded
from engine.track.donations import change_gifts, record_gifts

# Gift files are small next to signature files (a campaign's gifts are a few thousand):
# batches of this many rows, each committed on its own like signature imports.
BATCH = 1_000
_COLUMNS_HINT = (
    "columns: email, amount, currency, donated_at, frequency, external_id, reference,"
    " subscription_id, status, refunded_at, cancelled_at, or their French names (docs/cli.md)"
)


@dataclass
class GiftReport:
    recorded: Recorded = field(default_factory=Recorded)
    rejected: int = 0
    rejects_file: Path | None = None
    # References given that we did not make: ignored, the gift attributed otherwise.
    unknown_references: int = 0
    # Rows whose status changed their gift: refunds and monthly gifts cancelled here, and
    # changes recorded before (a file imported again, a webhook ahead of the export).
    refunded: int = 0
    cancelled: int = 0
    already: int = 0

    def add(self, recorded: Recorded, unknown_references: int) -> None:
        self.recorded.add(recorded)
        self.unknown_references += unknown_references

    def changed(self, change: Change, outcome: Outcome) -> None:
        if outcome == "already":
            self.already += 1
        elif change == "refunded":
            self.refunded += 1
        else:
            self.cancelled += 1

    def summary(self) -> str:
        r = self.recorded
        unattributed = r.imported - r.by_reference - r.by_last_click
        lines = [
            f"imported {r.imported} / duplicates {r.duplicates} / rejected {self.rejected}",
            f"attributed: {r.by_reference} by reference, {r.by_last_click} by last click,"
            f" {unattributed} unattributed",
        ]
        if self.refunded or self.cancelled or self.already:
            lines.append(
                f"refunded {self.refunded} / monthly gifts cancelled {self.cancelled}"
                f" / already so {self.already}"
            )
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
        if name not in ROW_FIELDS
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
    secret: Secret,
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
    # The batch's rows that change their gift, in file order: applied once it is recorded.
    changes: list[tuple[CsvRow, GiftRow, Change]] = []
    progress.phase("Importing donations", data_lines(path))
    shown = 1  # the header
    line = 1

    def flush() -> None:
        nonlocal shown
        at = now()
        with sessions.begin() as session:
            recorded, unknown = record_gifts(
                session, batch.values(), secret=secret, now=at, window=window
            )
            asked = [(gift.external_id, change, gift.status_at) for _, gift, change in changes]
            outcomes = change_gifts(session, asked, now=at)
            for (row, _, change), outcome in zip(changes, outcomes, strict=True):
                if isinstance(outcome, MobiliseError):  # the gift recorded says otherwise
                    rejects.write(row, outcome.field or "status", outcome.message)
                else:
                    report.changed(change, outcome)
        report.add(recorded, unknown)
        batch.clear()
        changes.clear()
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
            if gift.status != "paid":
                changes.append((row, gift, gift.status))
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
