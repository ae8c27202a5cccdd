"""CSV cells: header aliases (English and French), yes/no values, dates, and safe output."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo


def header_key(raw: str) -> str:
    """`Code postal`, `code_postal` and ` CODE-POSTAL ` all become `code postal`."""
    text = unicodedata.normalize("NFKD", raw.strip().lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(re.split(r"[\s_\-]+", text)).strip()


def alias_table(aliases: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Map every accepted header spelling to its canonical column name."""
    table: dict[str, str] = {}
    for canonical, spellings in aliases.items():
        for spelling in (canonical, *spellings):
            table[header_key(spelling)] = canonical
    return table


def map_headers(
    headers: Sequence[str], table: Mapping[str, str]
) -> tuple[dict[int, str], list[str]]:
    """Column index -> canonical name, and the headers nobody knows (ignored, reported)."""
    mapped: dict[int, str] = {}
    unknown: list[str] = []
    for index, raw in enumerate(headers):
        canonical = table.get(header_key(raw))
        if canonical is None and header_key(raw).startswith(("consent ", "consentement ")):
            canonical = "consent_" + header_key(raw).split(" ", 1)[1].replace(" ", "_")
        if canonical is None or canonical in mapped.values():
            if raw.strip():
                unknown.append(raw)
            continue
        mapped[index] = canonical
    return mapped, unknown


# `on`: what a ticked HTML checkbox sends (an unticked one sends nothing).
_YES = {"yes", "y", "oui", "o", "1", "true", "vrai", "x", "on"}
_NO = {"no", "n", "non", "0", "false", "faux", "off"}
FLAG_WORDS = frozenset(_YES | _NO)


@lru_cache(maxsize=256)
def parse_flag(raw: str) -> bool | None:
    """yes/no, oui/non, 1/0, true/false (on/off from a form); empty means "not asked"."""
    value = raw.strip().lower()
    if not value:
        return None
    if value in _YES:
        return True
    if value in _NO:
        return False
    raise ValueError(f"'{shown(raw)}' is not yes/no (oui/non, 1/0, true/false)")


_DMY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")


@lru_cache(maxsize=65536)  # exports repeat dates (paper sheets: one per day)
def parse_timestamp(raw: str, zone: ZoneInfo) -> datetime | None:
    """ISO 8601 or French `dd/mm/yyyy [hh:mm[:ss]]` (naive: the campaign's zone), in UTC."""
    value = raw.strip()
    if not value:
        return None
    match = _DMY.match(value)
    try:
        if match:
            d, m, y, hh, mm, ss = match.groups()
            parsed = datetime.combine(
                date(int(y), int(m), int(d)), time(int(hh or 0), int(mm or 0), int(ss or 0))
            )
        else:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"'{shown(raw)}' is not a date (use 2024-05-13, 2024-05-13T18:30 or 13/05/2024)"
        ) from None
    # Returned in UTC: comparing aware datetimes of one tzinfo skips the zone lookups.
    try:
        return (parsed.replace(tzinfo=zone) if parsed.tzinfo is None else parsed).astimezone(UTC)
    except OverflowError:  # 0001-01-01 in Paris, 9999-12-31T23:59-12:00: outside datetime's years
        raise ValueError(f"'{shown(raw)}' is out of the range of dates") from None


def shown(raw: str, limit: int = 60) -> str:
    """A cell quoted in a message: at most `limit` characters of it, what a terminal would
    act on or hide (controls, invisible characters) escaped as Python writes them."""
    cut = raw if len(raw) <= limit else raw[:limit] + "…"
    if cut.isprintable():
        return cut
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in cut)


# Characters no signer types and no eye sees, refused in every text cell: C0 and C1 controls
# but tab, line feed and carriage return (whitespace, which names collapse and addresses
# refuse), Unicode format characters (category Cf: zero-width space and joiners, bidi
# overrides and isolates, a BOM inside a value, soft hyphen, tags), surrogates (Cs) and
# private use (Co). Listed rather than computed from `unicodedata` at import (0.1 s a
# process); a unit test checks the list against the interpreter's Unicode database.
_UNSEEN_RANGES = (
    "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\xad"
    "\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f"
    "\ud800-\udfff\ue000-\uf8ff\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
    "\U000f0000-\U000ffffd\U00100000-\U0010fffd"
)
UNSEEN = re.compile(f"[{_UNSEEN_RANGES}]")


def visible_pattern(*, joiners: bool = False) -> str:
    """A JSON Schema pattern (ECMA-262, as OpenAPI documents it) for text without the
    characters UNSEEN refuses in the Basic Multilingual Plane, escaped as \\uXXXX: the
    schema states the rule, and the server applies it whole (the astral private-use planes
    and tags too, which a pattern cannot name the same way in ECMA-262 and in Python; and
    surrogates, which no JSON text decodes to but a lone one, and which as UTF-16 code
    units would refuse every astral character in ECMA-262's reading). With
    `joiners` (names), ZWNJ and ZWJ are let through, which the server takes between
    letters only (`unseen_character`)."""
    return f"^[^{_unseen_class(joiners=joiners)}]*$"


def present_pattern() -> str:
    """`visible_pattern` for text that is more than blanks (a required id, stripped)."""
    unseen = _unseen_class(joiners=False)
    return f"^[^{unseen}]*[^{unseen}{_BLANKS}][^{unseen}]*$"


def _unseen_class(*, joiners: bool) -> str:
    chars = (
        _UNSEEN_RANGES.replace("\u200b-\u200f", "\u200b\u200e\u200f") if joiners else _UNSEEN_RANGES
    )
    ranges, i = [], 0
    while i < len(chars):
        low = high = chars[i]
        if i + 2 < len(chars) and chars[i + 1] == "-":
            high, i = chars[i + 2], i + 3
        else:
            i += 1
        if ord(low) <= 0xFFFF and low != "\ud800":
            ranges.append(f"\\u{ord(low):04x}" + (f"-\\u{ord(high):04x}" if high != low else ""))
    return "".join(ranges)


# The whitespace `str.strip` and `str.split` remove that UNSEEN lets through (tab, line
# feed, carriage return and the Unicode spaces), as a JSON Schema class: patterns that
# state what the server trims say it with this, and so are exact.
_BLANKS = "\\t\\n\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
BLANK = f"[{_BLANKS}]"


def spelled_pattern(words: Iterable[str], *, blank: bool = True) -> str:
    """A JSON Schema pattern for one of `words` (ASCII, in any case, with any blank around
    and between its words), or nothing unless `blank` is false: what
    `" ".join(raw.lower().split())` finds in a set of lowercase spellings."""

    def spelled(word: str) -> str:
        parts = (
            "".join(f"[{c}{c.upper()}]" if c.isalpha() else _literal(c) for c in part)
            for part in word.split()
        )
        return f"{BLANK}+".join(parts)

    optional = "?" if blank else ""
    return f"^{BLANK}*(?:{'|'.join(spelled(w) for w in sorted(words))}){optional}{BLANK}*$"


def _literal(char: str) -> str:
    # A hyphen or a digit stands for itself outside a class, in ECMA-262 as in Python.
    return char if char.isalnum() or char == "-" else re.escape(char)


def unseen_character(text: str, *, joiners: bool = False) -> str | None:
    """`U+200B ZERO WIDTH SPACE` for the first character of `text` that `UNSEEN` refuses.

    With `joiners`, a zero-width non-joiner or joiner (U+200C, U+200D) between two letters
    (or a letter's marks) is let through: Persian and Indic names are spelled with them
    (a ZWNJ inside a Persian word, a ZWJ after a Devanagari virama). Names only: in an
    address the same character makes a lookalike of another one."""
    for found in UNSEEN.finditer(text):
        char, at = found.group(), found.start()
        if joiners and char in _JOINERS and _lettered(text, at - 1) and _lettered(text, at + 1):
            continue
        kind = _KINDS.get(unicodedata.category(char), "control character")
        return f"U+{ord(char):04X} {unicodedata.name(char, kind)}"
    return None


_JOINERS = "\u200c\u200d"
_KINDS = {"Co": "private use character", "Cs": "surrogate"}


def _lettered(text: str, at: int) -> bool:
    return 0 <= at < len(text) and unicodedata.category(text[at])[0] in "LM"


# What a spreadsheet reads as a formula: these first (full-width ＝＋－＠ and the small forms
# too, which NFKC folds to them), after any blanks, which spreadsheets skip; and a cell
# starting with a tab or a carriage return.
_FORMULA_START = frozenset("=+-@")
_CONTROL_START = ("\t", "\r")


def safe_cell(value: object) -> str:
    """Neutralise spreadsheet formulas (CSV injection): prefix with a quote."""
    text = "" if value is None else str(value)
    first = text.lstrip()[:1]
    if text.startswith(_CONTROL_START) or (
        first and unicodedata.normalize("NFKC", first)[:1] in _FORMULA_START
    ):
        return "'" + text
    return text
