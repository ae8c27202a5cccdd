"""`mobilise import signatures`: stream a CSV, validate rows, record them in batches.

Large files are parsed in a second process while this one writes to the database: the
two halves of the work each take a core (a thread would share the interpreter lock).
Each batch commits on its own: a crash keeps what was done, and a re-run skips it.
"""

from __future__ import annotations

import multiprocessing
import queue
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from engine.intake.csvfiles import CsvRow, RejectsWriter, read_headers, read_rows
from engine.rules.signers import SIGNATURE_COLUMNS, RowError, SignatureRow, parse_signer
from engine.rules.tabular import header_key
from engine.store import petitions, signatures
from engine.store.signatures import Outcome

BATCH = 20_000
# Below this size a second process costs more to start than it saves.
PARALLEL_ABOVE_BYTES = 2_000_000
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


@dataclass(frozen=True)
class ParsedBatch:
    rows: list[SignatureRow]  # unique by key within the batch
    rejects: list[tuple[CsvRow, str, str]]  # row, field, reason
    duplicates: int  # repeats of a key already in this batch


def parse_batches(
    path: Path, *, purposes: Collection[str], zone: ZoneInfo, now: datetime, batch_size: int
) -> Iterator[ParsedBatch]:
    _, _, rows = read_rows(path, SIGNATURE_COLUMNS, required_any=_REQUIRED_ANY)
    batch: dict[str, SignatureRow] = {}
    rejects: list[tuple[CsvRow, str, str]] = []
    duplicates = 0
    for row in rows:
        try:
            signer = parse_signer(row.values, line=row.line, now=now, zone=zone, purposes=purposes)
        except RowError as exc:
            rejects.append((row, exc.field, str(exc)))
            continue
        if signer is None:
            continue
        if signer.key in batch:
            duplicates += 1
            continue
        batch[signer.key] = signer
        if len(batch) >= batch_size:
            yield ParsedBatch(list(batch.values()), rejects, duplicates)
            batch, rejects, duplicates = {}, [], 0
    if batch or rejects or duplicates:
        yield ParsedBatch(list(batch.values()), rejects, duplicates)


def _parse_in_child(
    out: multiprocessing.Queue[ParsedBatch | BaseException | None],
    path: Path,
    purposes: frozenset[str],
    zone: ZoneInfo,
    now: datetime,
    batch_size: int,
) -> None:
    try:
        for parsed in parse_batches(
            path, purposes=purposes, zone=zone, now=now, batch_size=batch_size
        ):
            out.put(parsed)
        out.put(None)
    except BaseException as exc:  # handed to the parent, which raises it
        out.put(exc)


def _parsed_in_child(
    path: Path, *, purposes: Collection[str], zone: ZoneInfo, now: datetime, batch_size: int
) -> Iterator[ParsedBatch]:
    context = multiprocessing.get_context("spawn")
    # Two batches ahead at most: memory stays bounded whatever the file size.
    out: multiprocessing.Queue[ParsedBatch | BaseException | None] = context.Queue(2)
    child = context.Process(
        target=_parse_in_child,
        daemon=True,
        name="import-parser",
        args=(out, path, frozenset(purposes), zone, now, batch_size),
    )
    child.start()
    try:
        while True:
            try:
                item = out.get(timeout=5)
            except queue.Empty:
                if not child.is_alive():
                    raise RuntimeError("the CSV parser process stopped") from None
                continue
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        if child.is_alive():
            child.terminate()
        child.join(timeout=10)
        out.close()


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
    parallel: bool | None = None,
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
    if parallel is None:
        parallel = path.stat().st_size > PARALLEL_ABOVE_BYTES
    parse = _parsed_in_child if parallel else parse_batches
    try:
        for parsed in parse(path, purposes=purposes, zone=zone, now=now(), batch_size=batch_size):
            for row, field_name, reason in parsed.rejects:
                rejects.write(row, field_name, reason)
            report.outcome.duplicates += parsed.duplicates
            if parsed.rows:
                with sessions.begin() as session:
                    report.outcome.add(
                        signatures.record(
                            session,
                            petition=petition,
                            rows=parsed.rows,
                            now=now(),
                            source="import",
                            enrol=enrol,
                        )
                    )
    finally:
        rejects.close()
    report.rejected = rejects.count
    report.rejects_file = rejects.path if rejects.count else None
    return report
