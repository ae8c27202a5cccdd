"""Reading CSV exports as people make them: BOM or not, comma or semicolon, line numbers kept."""

from __future__ import annotations

import csv
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from itertools import chain
from pathlib import Path
from typing import IO, NamedTuple

from engine.errors import Invalid, Problem
from engine.rules.tabular import header_key, map_headers, safe_cell, shown


class CsvRow(NamedTuple):
    line: int  # the physical line where the record starts (1 = header)
    # The cells as read, padded to the mapped columns, then one empty cell more: position
    # -1 stands for a column the file lacks.
    cells: list[str]
    # Why the record could not be read as CSV at all (its cells are then empty).
    broken: str | None = None


def data_lines(path: Path) -> int:
    """The lines after the header: a progress bar's total, counted in bytes (about 1 ms a
    megabyte), before the rows are read. A record quoted over several lines counts each."""
    lines = 0
    last = b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":
        lines += 1  # the last line has no line break
    return max(lines - 1, 0)


def _dialect(sample: str) -> str:
    header = sample.splitlines()[0] if sample else ""
    return ";" if header.count(";") > header.count(",") else ","


def read_headers(
    path: Path, columns: Mapping[str, str], *, required_any: Sequence[str]
) -> tuple[list[str], list[str], dict[str, int]]:
    """The header line, the headers nobody knows (or repeating another) and the position of
    each known column; Invalid if no required column."""
    headers, unknown, positions, rows = read_rows(path, columns, required_any=required_any)
    next(rows, None)  # enter the generator so that closing it closes the file
    rows.close()
    return headers, unknown, positions


def read_rows(
    path: Path, columns: Mapping[str, str], *, required_any: Sequence[str]
) -> tuple[list[str], list[str], dict[str, int], Generator[CsvRow]]:
    """Headers, unknown headers, the position of each known column, and a lazy iterator of
    rows (constant memory)."""
    handle = path.open(encoding="utf-8-sig", newline="")
    try:
        sample = handle.read(8192)
        handle.seek(0)
        delimiter = _dialect(sample)
        headers = next(csv.reader(handle, delimiter=delimiter), [])
    except UnicodeDecodeError as exc:
        handle.close()
        raise Invalid(
            f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})",
            hint="export the file as UTF-8 (with or without BOM)",
        ) from None
    except csv.Error as exc:
        handle.close()
        raise Invalid(
            f"{path}:1: the header line is not readable as CSV ({exc})",
            problems=[Problem(f"header line not readable as CSV ({exc})", file=str(path), line=1)],
        ) from None
    mapping, unknown = map_headers(headers, columns)
    if not any(name in mapping.values() for name in required_any):
        handle.close()
        raise Invalid(
            f"{path}:1: none of the columns {', '.join(required_any)} found",
            problems=[
                Problem(
                    f"none of the columns {', '.join(required_any)} found",
                    file=str(path),
                    line=1,
                    hint="headers: " + ", ".join(headers),
                )
            ],
        )
    positions = {name: i for i, name in mapping.items()}
    width = max(mapping, default=-1) + 1
    return headers, unknown, positions, _iterate(handle, delimiter, width)


def refused_columns(
    unknown: Sequence[str], columns: Mapping[str, str], *, hint: str
) -> list[Problem]:
    """A problem for each header nobody knows or that repeats a known column: a column
    nobody reads would lose what it says, so the file is refused before any row is read."""
    return [
        Problem(
            f"column '{shown(raw)}' repeats column '{columns[header_key(raw)]}'"
            if header_key(raw) in columns
            else f"unknown column '{shown(raw)}'",
            hint=hint,
        )
        for raw in unknown
    ]


def _remembered(lines: Iterable[str], record: list[str]) -> Iterator[str]:
    """The physical lines, each also kept in `record` (the lines of the record being read)."""
    for line in lines:
        record.append(line)
        yield line


def _iterate(handle: IO[str], delimiter: str, width: int) -> Generator[CsvRow]:
    """The records after the header, each with the line it starts on. A record the reader
    cannot read (a cell over `csv.field_size_limit()`, a quote left open: the reader then
    runs on until the limit or the end of the file) is one broken row at its first line,
    and the lines it swallowed are read again: every line of the file is accounted for."""
    with handle:
        start = 2
        record: list[str] = []
        # strict: a quote still open at the end of the file is an error, not a last record
        # holding the rest of the file.
        reader = csv.reader(_remembered(handle, record), delimiter=delimiter, strict=True)
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield CsvRow(start, [""] * (width + 1), _unreadable(exc, len(record)))
                start += 1
                again, record[:] = record[1:], []
                reader = csv.reader(
                    _remembered(chain(again, handle), record), delimiter=delimiter, strict=True
                )
                continue
            if len(cells) < width:
                cells += [""] * (width - len(cells))
            cells.append("")
            yield CsvRow(start, cells)
            start += len(record)
            record.clear()


def _unreadable(exc: csv.Error, lines: int) -> str:
    if "field limit" in str(exc):
        reason = f"a cell longer than {csv.field_size_limit():,} characters"
    else:
        reason = f"not readable as CSV ({exc})"
    if lines > 1:  # read again from the next line on
        reason += "; a quote opened on this line is not closed on it"
    return reason


class RejectsWriter:
    """`line, field, reason` and the original cells, formula-safe; created on first reject."""

    def __init__(self, path: Path, headers: Sequence[str]) -> None:
        self.path = path
        self.headers = list(headers)
        self.count = 0
        self._handle: IO[str] | None = None
        self._writerow: Callable[[Iterable[object]], object] | None = None

    def write(self, row: CsvRow, field: str, reason: str) -> None:
        if self._writerow is None:
            self._handle = self.path.open("w", encoding="utf-8", newline="")
            self._writerow = csv.writer(self._handle).writerow
            # Header cells come from the file as much as data cells: neutralised alike.
            self._writerow(["line", "field", "reason", *map(safe_cell, self.headers)])
        cells = row.cells[: len(self.headers)]
        cells += [""] * (len(self.headers) - len(cells))
        self._writerow([row.line, field, safe_cell(reason), *map(safe_cell, cells)])
        self.count += 1

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
