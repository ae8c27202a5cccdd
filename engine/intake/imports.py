"""`mobilise import signatures`: stream a CSV, validate rows, record them in batches.

Each batch commits on its own: a crash keeps what was done, and a re-run skips it.
(Parsing in a second process was tried and measured slower: pickling the rows across
costs more than the parse it overlaps; see bench/README.md.)
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from engine.intake.csvfiles import CsvRow, RejectsWriter, read_headers, read_rows
from engine.rules.signers import SIGNATURE_COLUMNS, RowError, SignatureRow, signer_parser
from engine.rules.tabular import header_key
from engine.store import petitions, signatures
from engine.store.signatures import Outcome

BATCH = 20_000
_REQUIRED_ANY = ("email", "first_name", "last_name")


@dataclass
class ImportReport:
    outcome: Outcome = field(default_factory=Outcome)
    rejected: int = 0
    rejects_file: Path | None = None
    ignored_columns: list[str] = field(default_factory=list)

    def summary(self) -> str:
        o = self.outcome
        lines = [
            f"imported {o.imported} / duplicates {o.duplicates} / paper {o.paper} / "
            f"rejected {self.rejected}"
        ]
        if self.rejects_file:
            lines.append(f"rejected rows: {self.rejects_file}")
        if self.ignored_columns:
            lines.append(f"ignored columns: {', '.join(self.ignored_columns)}")
        lines += [f"milestone reached: {t:,}".replace(",", " ") for t in o.milestones]
        return "\n".join(lines)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """An import allocates hundreds of thousands of short-lived rows, none in a cycle; the
    cyclic collector would rescan the live batch again and again (measured: a third of an
    import's time). Reference counting still frees everything."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass(frozen=True)
class ParsedBatch:
    rows: list[SignatureRow]  # unique by key within the batch
    rejects: list[tuple[CsvRow, str, str]]  # row, field, reason
    duplicates: int  # repeats of a key already in this batch


def parse_batches(
    path: Path, *, purposes: Collection[str], zone: ZoneInfo, now: datetime, batch_size: int
) -> Iterator[ParsedBatch]:
    _, _, columns, rows = read_rows(path, SIGNATURE_COLUMNS, required_any=_REQUIRED_ANY)
    parse = signer_parser(columns, now=now, zone=zone, purposes=purposes)
    batch: dict[str, SignatureRow] = {}
    rejects: list[tuple[CsvRow, str, str]] = []
    duplicates = 0
    for row in rows:
        try:
            signer = parse(row.cells, row.line)
        except RowError as exc:
            rejects.append((row, exc.field, str(exc)))
            continue
        if signer is None:
            continue
        key = signer.email or signer.key
        if key in batch:
            duplicates += 1
            continue
        batch[key] = signer
        if len(batch) >= batch_size:
            yield ParsedBatch(list(batch.values()), rejects, duplicates)
            batch, rejects, duplicates = {}, [], 0
    if batch or rejects or duplicates:
        yield ParsedBatch(list(batch.values()), rejects, duplicates)


def import_signatures(
    sessions: sessionmaker[Session],
    *,
    slug: str,
    path: Path,
    now: Callable[[], datetime],
    zone: ZoneInfo,
    enrol: bool = False,
    rejects_path: Path | None = None,
    batch_size: int = BATCH,
) -> ImportReport:
    with sessions.begin() as session:
        petition = petitions.facts(session, slug)
    purposes = set(petition.consent_versions)
    headers, unknown = read_headers(path, SIGNATURE_COLUMNS, required_any=_REQUIRED_ANY)
    # A consent column for a purpose the petition does not declare is ignored, and said so.
    unknown += [
        h
        for h in headers
        if header_key(h).startswith(("consent ", "consentement "))
        and header_key(h).split(" ", 1)[1].replace(" ", "_") not in purposes
    ]
    report = ImportReport(ignored_columns=unknown)
    rejects = RejectsWriter(rejects_path or path.with_suffix(".rejects.csv"), headers)
    try:
        with _collector_paused():
            for parsed in parse_batches(
                path, purposes=purposes, zone=zone, now=now(), batch_size=batch_size
            ):
                for row, field_name, reason in parsed.rejects:
                    rejects.write(row, field_name, reason)
                report.outcome.duplicates += parsed.duplicates
                if parsed.rows:
                    with sessions.begin() as session:
                        outcome = signatures.record(
                            session,
                            petition=petition,
                            rows=parsed.rows,
                            now=now(),
                            source="import",
                            enrol=enrol,
                        )
                    report.outcome.add(outcome)
    finally:
        rejects.close()
    report.rejected = rejects.count
    report.rejects_file = rejects.path if rejects.count else None
    return report
