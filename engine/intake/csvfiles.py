"""Reading CSV exports as people make them: BOM or not, comma or semicolon, line numbers kept."""

from __future__ import annotations

import csv
from collections.abc import Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, NamedTuple

from engine.errors import Invalid, Problem
from engine.rules.tabular import map_headers, safe_cell


class CsvRow(NamedTuple):
    line: int  # the physical line where the record starts (1 = header)
    # The cells as read, padded to the mapped columns, then one empty cell more: position
    # -1 stands for a column the file lacks.
    cells: list[str]


def _dialect(sample: str) -> str:
    header = sample.splitlines()[0] if sample else ""
    return ";" if header.count(";") > header.count(",") else ","


def read_headers(
    path: Path, columns: Mapping[str, str], *, required_any: Sequence[str]
) -> tuple[list[str], list[str]]:
    """The header line and the headers nobody knows; Invalid if no required column."""
    headers, unknown, _, rows = read_rows(path, columns, required_any=required_any)
    next(rows, None)  # enter the generator so that closing it closes the file
    rows.close()
    return headers, unknown


def read_rows(
    path: Path, columns: Mapping[str, str], *, required_any: Sequence[str]
) -> tuple[list[str], list[str], dict[str, int], Generator[CsvRow]]:
    """Headers, unknown headers, the position of each known column, and a lazy iterator of
    rows (constant memory)."""
    handle = path.open(encoding="utf-8-sig", newline="")
    try:
        sample = handle.read(8192)
        handle.seek(0)
        reader = csv.reader(handle, delimiter=_dialect(sample))
        headers = next(reader, [])
    except UnicodeDecodeError as exc:
        handle.close()
        raise Invalid(
            f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})",
            hint="export the file as UTF-8 (with or without BOM)",
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
    return headers, unknown, positions, _iterate(handle, reader, max(mapping, default=-1) + 1)


def _iterate(handle: IO[str], reader: Iterator[list[str]], width: int) -> Generator[CsvRow]:
    with handle:
        start = 2
        for cells in reader:
            if len(cells) < width:
                cells += [""] * (width - len(cells))
            cells.append("")
            yield CsvRow(start, cells)
            start = reader.line_num + 1  # type: ignore[attr-defined]


class RejectsWriter:
    """`line, field, reason` and the original cells, formula-safe; created on first reject."""

    def __init__(self, path: Path, headers: Sequence[str]) -> None:
        self.path = path
        self.headers = list(headers)
        self.count = 0
        self._handle: IO[str] | None = None
        self._writer: csv.DictWriter[str] | None = None

    def write(self, row: CsvRow, field: str, reason: str) -> None:
        if self._handle is None:
            self._handle = self.path.open("w", encoding="utf-8", newline="")
            self._writer = csv.DictWriter(
                self._handle, fieldnames=["line", "field", "reason", *self.headers]
            )
            self._writer.writeheader()
        assert self._writer is not None
        cells = {
            h: safe_cell(row.cells[i] if i < len(row.cells) else "")
            for i, h in enumerate(self.headers)
        }
        self._writer.writerow(
            {**cells, "line": row.line, "field": field, "reason": safe_cell(reason)}
        )
        self.count += 1

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
