"""Gifts in, whatever the door: `mobilise import donations`, `POST /api/donations` and the
payment platform's webhook all validate with engine.rules.gifts and record here.

A gift from an address nobody signed with is kept: its giver becomes a supporter without
consents, and the report says how many. A reference we did not make (or garbled) is
reported and ignored: the gift is then attributed by the giver's last click.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from engine.errors import Invalid, NotFound, Problem
from engine.intake.csvfiles import RejectsWriter, read_headers, read_rows, refused_columns
from engine.render import tokens
from engine.rules.gifts import (
    GIFT_COLUMNS,
    GIFT_FIELDS,
    REQUIRED,
    GiftRow,
    gift_parser,
    json_fields,
    parse_gift,
)
from engine.rules.signature_rows import RowError
from engine.rules.supporters import parse_email
from engine.rules.tabular import parse_timestamp
from engine.store import donations
from engine.store.donations import DonationRow, Recorded

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


def record_gifts(
    session: Session,
    gifts: Iterable[GiftRow],
    *,
    secret: str,
    now: datetime,
    window: timedelta,
) -> tuple[Recorded, int]:
    """Record validated gifts (external ids unique among them); returns what was done and
    how many references were not ours."""
    rows: list[DonationRow] = []
    unknown = 0
    for gift in gifts:
        message_id = tokens.read_reference(secret, gift.reference) if gift.reference else None
        if gift.reference is not None and message_id is None:
            unknown += 1
        rows.append(
            DonationRow(
                gift.email,
                gift.amount_cents,
                gift.currency,
                gift.donated_at,
                gift.frequency,
                gift.external_id,
                message_id,
            )
        )
    return donations.record(session, rows, now=now, window=window), unknown


@dataclass(frozen=True)
class OneGift:
    """What recording one gift (API, webhook) did, as the JSON answer says it."""

    external_id: str
    recorded: bool  # False: a gift with that external id was there already
    new_supporter: bool
    message_id: int | None
    attributed_by: str | None
    unknown_reference: bool

    def as_json(self) -> dict[str, object]:
        return dict(self.__dict__)


def record_one(
    session: Session,
    body: object,
    *,
    secret: str,
    now: datetime,
    zone: ZoneInfo,
    window: timedelta,
) -> OneGift:
    """A gift given as JSON (the vocabulary of the CSV columns; `donated_at` defaults to
    `now`); Invalid (422) naming the fields at fault."""
    values, problems = json_fields(body)
    if problems:
        raise Invalid(str(problems[0]), problems=problems)
    values.setdefault("donated_at", now.isoformat())
    try:
        gift = parse_gift(values, now=now, zone=zone)
    except RowError as exc:
        raise Invalid(str(exc), field=exc.field) from None
    recorded, unknown = record_gifts(session, [gift], secret=secret, now=now, window=window)
    message_id, attributed_by = donations.attribution(session, gift.external_id)
    return OneGift(
        gift.external_id,
        bool(recorded.imported),
        bool(recorded.new_supporters),
        message_id,
        attributed_by,
        bool(unknown),
    )


# What names the gift a change applies to, and the change's date, by kind of change.
_CHANGES = {
    "refund": ("external_id", "refunded_at"),
    "monthly_cancelled": ("email", "cancelled_at"),
}


def apply_change(
    session: Session, kind: str, data: Mapping[str, str], *, now: datetime, zone: ZoneInfo
) -> dict[str, object]:
    """A refund (`external_id`, `refunded_at`) or a cancelled monthly gift (`email`,
    `cancelled_at`), dated `now` when the date is not given. NotFound when the gift is not
    recorded (yet): the caller answers 404 and stores nothing, so the platform retries."""
    key, dated = _CHANGES[kind]
    target = data.get(key, "").strip()
    if not target:
        raise Invalid(f"data.{key}: missing", field=f"data.{key}")
    try:
        at = parse_timestamp(data.get(dated, ""), zone) or now
    except ValueError as exc:
        raise Invalid(f"data.{dated}: {exc}", field=f"data.{dated}") from None
    if key == "email":
        try:
            target = parse_email(target)
        except ValueError as exc:
            raise Invalid(f"data.email: {exc}", field="data.email") from None
    if kind == "refund":
        outcome = donations.refund(session, external_id=target, at=at)
    else:
        outcome = donations.cancel_monthly(session, email=target, at=at)
    if outcome == "unknown":
        what = "gift with external_id" if kind == "refund" else "monthly gift from"
        raise NotFound(
            f"no {what} {target!r} recorded by {at.isoformat()}",
            field=f"data.{key}",
            hint="nothing was stored; the platform's retry applies it once the gift is recorded",
        )
    return {
        "outcome": "refunded" if kind == "refund" else "cancelled",
        "already": outcome == "already",
    }


def _checked_columns(path: Path) -> tuple[list[str], dict[str, int]]:
    headers, unknown, positions = read_headers(path, GIFT_COLUMNS, required_any=("email",))
    problems = refused_columns(unknown, GIFT_COLUMNS, hint=_COLUMNS_HINT)
    # `consent …` headers map to consent names, which a gift does not take.
    problems += [
        Problem(f"unknown column '{headers[i]}'", hint=_COLUMNS_HINT)
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
) -> GiftReport:
    """Import a CSV of gifts; rejected rows go to a CSV with line number, field and reason."""
    headers, positions = _checked_columns(path)
    parse = gift_parser(positions, now=now(), zone=zone)
    _, _, _, rows = read_rows(path, GIFT_COLUMNS, required_any=("email",))
    report = GiftReport()
    rejects = RejectsWriter(rejects_path or path.with_suffix(".rejects.csv"), headers)
    batch: dict[str, GiftRow] = {}

    def flush() -> None:
        with sessions.begin() as session:
            recorded, unknown = record_gifts(
                session, batch.values(), secret=secret, now=now(), window=window
            )
        report.add(recorded, unknown)
        batch.clear()

    try:
        for row in rows:
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
