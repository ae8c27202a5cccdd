"""`mobilise import signatures`: stream a CSV, validate rows, record them in batches."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from engine.intake.csvfiles import RejectsWriter, read_rows
from engine.rules.signers import SIGNATURE_COLUMNS, RowError, SignatureRow, parse_signer
from engine.rules.tabular import header_key
from engine.store import petitions, signatures
from engine.store.signatures import Outcome

BATCH = 20_000


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


class _BatchWriter:
    """Records batches on one writer thread, so that the database works on batch N while
    the caller parses batch N+1 (sqlite3 and psycopg release the GIL while they execute).
    Each batch commits on its own: a crash keeps what was done, and a re-run skips it."""

    def __init__(self, write: Callable[[list[SignatureRow]], Outcome], total: Outcome) -> None:
        self._write = write
        self._total = total
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-writer")
        self._pending: Future[Outcome] | None = None

    def submit(self, rows: list[SignatureRow]) -> None:
        self.wait()
        self._pending = self._pool.submit(self._write, rows)

    def wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._total.add(pending.result())

    def close(self) -> None:
        self._pool.shutdown(wait=True)


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
    headers, unknown, rows = read_rows(
        path, SIGNATURE_COLUMNS, required_any=("email", "first_name", "last_name")
    )
    # A consent column for a purpose the petition does not declare is ignored, and said so.
    unknown += [
        h
        for h in headers
        if header_key(h).startswith(("consent ", "consentement "))
        and header_key(h).split(" ", 1)[1].replace(" ", "_") not in purposes
    ]
    report = ImportReport(ignored_columns=unknown)
    rejects = RejectsWriter(rejects_path or path.with_suffix(".rejects.csv"), headers)

    def write(batch: list[SignatureRow]) -> Outcome:
        with sessions.begin() as session:
            return signatures.record(
                session,
                petition=petition,
                rows=batch,
                now=now(),
                source="import",
                enrol=enrol,
            )

    writer = _BatchWriter(write, report.outcome)
    batch: dict[str, SignatureRow] = {}
    try:
        started = now()
        for row in rows:
            try:
                signer = parse_signer(
                    row.values, line=row.line, now=started, zone=zone, purposes=purposes
                )
            except RowError as exc:
                rejects.write(row, exc.field, str(exc))
                continue
            if signer is None:
                continue
            if signer.key in batch:
                report.outcome.duplicates += 1
                continue
            batch[signer.key] = signer
            if len(batch) >= batch_size:
                writer.submit(list(batch.values()))
                batch = {}
        if batch:
            writer.submit(list(batch.values()))
        writer.wait()
    finally:
        writer.close()
        rejects.close()
    report.rejected = rejects.count
    report.rejects_file = rejects.path if rejects.count else None
    return report
