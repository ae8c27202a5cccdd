"""`mobilise import signatures`: stream a CSV, validate rows, record them in batches.

Each batch commits on its own: a crash keeps what was done, and a re-run skips it.
A second process reads and validates the file while this one writes the previous batch
(measured: parsing is about half of an import). It hands over each batch as the staging
table's plain tuples, which pickle cheaply; pickling the validated rows themselves (with
their datetimes and dicts) cost more than the overlap saved (see bench/README.md).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from engine import heap
from engine.config import Secret
from engine.errors import Invalid
from engine.intake.csvfiles import (
    CsvRow,
    RejectsWriter,
    data_lines,
    read_headers,
    read_rows,
    refused_columns,
)
from engine.progress import QUIET, Progress
from engine.rules.rights import ERASED_REASON, ErasedAddresses
from engine.rules.signature_rows import (
    FILE_FIELDS,
    SIGNATURE_COLUMNS,
    RowError,
    SignatureRow,
    refused_names,
    signer_parser,
)
from engine.rules.tabular import shown
from engine.store import petitions, signatures, staging, suppressions
from engine.store.db import BULK, refresh_statistics
from engine.store.signatures import Outcome
from engine.store.staging import Staged

BATCH = 20_000
# The writer waits for the first batch with nothing to do: a smaller one starts it sooner.
# Batches then double up to BATCH, so that the parser, which reads a row about twice as
# fast as the writer records it, has the next batch ready when the writer asks (with 4,000
# then 20,000 the writer waited 0.1 to 0.18 s for the second batch).
_FIRST_BATCH = 4_000
_GROWTH = 2
_REQUIRED_ANY = ("email", "first_name", "last_name")
R = TypeVar("R")


@dataclass
class ImportReport:
    outcome: Outcome = field(default_factory=Outcome)
    rejected: int = 0
    rejects_file: Path | None = None

    def summary(self) -> str:
        o = self.outcome
        lines = [
            f"imported {o.imported} / duplicates {o.duplicates} / paper {o.paper} / "
            f"rejected {self.rejected}"
        ]
        if self.rejects_file:
            lines.append(f"rejected rows: {self.rejects_file}")
        lines += [f"milestone reached: {t:,}".replace(",", " ") for t in o.milestones]
        return "\n".join(lines)


@dataclass(frozen=True)
class ParsedBatch(Generic[R]):
    rows: R  # unique by key within the batch
    rejects: list[tuple[CsvRow, str, str]]  # row, field, reason
    duplicates: int  # repeats of a key already in this batch
    line: int  # the line the batch's last record starts on (progress)


def parse_batches(
    path: Path,
    *,
    purposes: Collection[str],
    zone: ZoneInfo,
    now: datetime,
    batch_size: int,
    erased: ErasedAddresses,
) -> Iterator[ParsedBatch[list[SignatureRow]]]:
    _, _, columns, rows = read_rows(path, SIGNATURE_COLUMNS, required_any=_REQUIRED_ANY)
    parse = signer_parser(columns, now=now, zone=zone, purposes=purposes)
    batch: dict[str, SignatureRow] = {}
    rejects: list[tuple[CsvRow, str, str]] = []
    duplicates = 0
    size = min(batch_size, _FIRST_BATCH)
    line = 1
    for row in rows:
        line = row.line
        if row.broken is not None:
            rejects.append((row, "row", row.broken))
            continue
        try:
            signer = parse(row.cells, row.line)
        except RowError as exc:
            rejects.append((row, exc.field, str(exc)))
            continue
        if signer is None:
            continue
        if signer.email in erased:
            rejects.append((row, "email", ERASED_REASON))
            continue
        key = signer.email or signer.key
        if key in batch:
            duplicates += 1
            continue
        batch[key] = signer
        if len(batch) >= size:
            yield ParsedBatch(list(batch.values()), rejects, duplicates, line)
            batch, rejects, duplicates = {}, [], 0
            size = min(batch_size, size * _GROWTH)
    if batch or rejects or duplicates:
        yield ParsedBatch(list(batch.values()), rejects, duplicates, line)


def _parse_and_send(
    sender: Connection,
    path: Path,
    purposes: list[str],
    zone: ZoneInfo,
    now: datetime,
    batch_size: int,
    dialect: str,
    erased: ErasedAddresses,
) -> None:
    """The parsing process: staged batches, then None (or the error)."""
    with heap.paused():
        try:
            for parsed in parse_batches(
                path, purposes=purposes, zone=zone, now=now, batch_size=batch_size, erased=erased
            ):
                staged = staging.stage(parsed.rows, purposes, dialect)
                sender.send(ParsedBatch(staged, parsed.rejects, parsed.duplicates, parsed.line))
            sender.send(None)
        except BrokenPipeError:
            pass  # the importer stopped first (it failed, and says why)
        except Exception as exc:  # handed over to the importer, which raises it
            try:
                sender.send(exc)
            except Exception:  # not picklable: its text will do
                sender.send(RuntimeError(f"{type(exc).__name__}: {exc}"))
        finally:
            sender.close()


def _received(receiver: Connection) -> Iterator[ParsedBatch[Staged]]:
    while True:
        try:
            message = receiver.recv()
        except EOFError:
            raise RuntimeError("the process parsing the file stopped unexpectedly") from None
        if message is None:
            return
        if isinstance(message, BaseException):
            raise message
        yield message


@contextmanager
def _parsed_aside(
    path: Path,
    *,
    purposes: list[str],
    zone: ZoneInfo,
    now: datetime,
    batch_size: int,
    dialect: str,
    erased: ErasedAddresses,
) -> Iterator[Iterator[ParsedBatch[Staged]]]:
    """Batches parsed by a forked process. The pipe holds one batch: the parser stays at
    most one batch ahead of the writer, so memory stays constant."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    worker = context.Process(
        target=_parse_and_send,
        args=(sender, path, purposes, zone, now, batch_size, dialect, erased),
        name="mobilise-import-parser",
        daemon=True,
    )
    worker.start()
    sender.close()
    try:
        yield _received(receiver)
    finally:
        receiver.close()
        worker.join(timeout=5)
        if worker.is_alive():  # pragma: no cover - it ends once the pipe is closed
            worker.kill()
            worker.join()


def _checked_headers(path: Path, purposes: Collection[str]) -> list[str]:
    """The header line, if every column is one of the vocabulary (or a French alias of one)
    and every consent column a purpose of the petition: a column nobody reads would lose
    what the signers said in it, so the file is refused before any row is read."""
    headers, unknown, positions = read_headers(path, SIGNATURE_COLUMNS, required_any=_REQUIRED_ANY)
    problems = refused_columns(unknown, SIGNATURE_COLUMNS, hint=_COLUMNS_HINT)
    for name, index in positions.items():
        problems += [
            replace(p, message=f"column '{shown(headers[index])}': {p.message}", field=None)
            for p in refused_names([name], fields=FILE_FIELDS, purposes=set(purposes))
        ]
    problems = [replace(p, file=str(path), line=1) for p in problems]
    if problems:
        raise Invalid(str(problems[0]), problems=problems)
    return headers


_COLUMNS_HINT = (
    "columns: email, first_name, last_name, postal_code, signed_at and consent_<purpose>,"
    " or their French names (docs/cli.md)"
)


def import_signatures(
    sessions: sessionmaker[Session],
    *,
    slug: str,
    path: Path,
    now: Callable[[], datetime],
    zone: ZoneInfo,
    enrol: bool = False,
    secret: Secret,
    rejects_path: Path | None = None,
    batch_size: int = BATCH,
    progress: Progress = QUIET,
) -> ImportReport:
    """Import a signatures file. An address erased at its owner's request is refused (its
    row goes to the rejects file): an old list never brings it back (docs/privacy.md).
    `progress` counts the file's lines as their batches are recorded."""
    with sessions.begin() as session:
        petition = petitions.facts(session, slug)
        dialect = session.get_bind().dialect.name
        erased = ErasedAddresses(secret, suppressions.erased_hashes(session))
    purposes = sorted(petition.consent_versions)
    headers = _checked_headers(path, purposes)
    report = ImportReport()
    rejects = RejectsWriter(rejects_path or path.with_suffix(".rejects.csv"), headers)
    progress.phase("Importing signatures", data_lines(path))
    shown = 1  # the header
    try:
        with (
            heap.paused(),
            _parsed_aside(
                path,
                purposes=purposes,
                zone=zone,
                now=now(),
                batch_size=batch_size,
                dialect=dialect,
                erased=erased,
            ) as batches,
        ):
            for parsed in batches:
                for row, field_name, reason in parsed.rejects:
                    rejects.write(row, field_name, reason)
                report.outcome.duplicates += parsed.duplicates
                if parsed.rows.size:
                    with sessions.begin() as session:
                        outcome = signatures.record(
                            session,
                            petition=petition,
                            rows=parsed.rows,
                            now=now(),
                            source="import",
                            enrol=enrol,
                            bulk=True,
                        )
                    report.outcome.add(outcome)
                progress.advance(parsed.line - shown)
                shown = parsed.line
    finally:
        rejects.close()
    if report.outcome.imported > BULK:
        with sessions.begin() as session:
            refresh_statistics(session, "supporters", "signatures", "consents")
    report.rejected = rejects.count
    report.rejects_file = rejects.path if rejects.count else None
    return report
