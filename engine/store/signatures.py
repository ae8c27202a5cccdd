"""Recording signatures set-based: web batches and CSV imports share one pipeline.

Rows go to a per-connection temporary staging table, then a handful of INSERT … SELECT
statements create supporters, signatures (ranked by `seq`), consents and milestones.
No statement here runs once per signer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    insert,
    text,
)
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateTable

from engine.store import events
from engine.store.types import UTCDateTime

_staging_metadata = MetaData()
staging = Table(
    "signature_staging",
    _staging_metadata,
    Column("line", Integer, primary_key=True),
    Column("email", String(320), index=True),
    Column("first_name", String(100)),
    Column("last_name", String(100)),
    Column("postal_code", String(10)),
    Column("departement", String(3)),
    Column("region", String(40)),
    Column("paper_key", String(64)),
    Column("signed_at", UTCDateTime()),
    prefixes=["TEMPORARY"],
)
consent_staging = Table(
    "consent_staging",
    _staging_metadata,
    Column("line", Integer, primary_key=True),
    Column("purpose", String(40), primary_key=True),
    Column("granted", Boolean),
    Column("wording_version", String(40)),
    prefixes=["TEMPORARY"],
)


@dataclass(frozen=True)
class SignatureRow:
    """One validated signer; `email` is None for a paper signature (then `paper_key` is set)."""

    line: int
    email: str | None
    first_name: str | None
    last_name: str | None
    postal_code: str | None
    departement: str | None
    region: str | None
    paper_key: str | None
    signed_at: datetime
    # purpose -> (granted, wording version)
    consents: dict[str, tuple[bool, str]] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.email or f"paper:{self.paper_key}"


@dataclass
class Outcome:
    imported: int = 0
    paper: int = 0
    duplicates: int = 0
    milestones: list[int] = field(default_factory=list)

    def add(self, other: Outcome) -> None:
        self.imported += other.imported
        self.paper += other.paper
        self.duplicates += other.duplicates
        self.milestones += other.milestones


def _staging_ready(connection: Connection) -> None:
    # Temporary tables live as long as the pooled connection: create them once per connection.
    if connection.info.get("signature_staging"):
        for table in (staging, consent_staging):
            connection.execute(delete(table))
        return
    for table in (staging, consent_staging):
        connection.execute(CreateTable(table, if_not_exists=True))
        connection.execute(delete(table))
    connection.info["signature_staging"] = True


def _load_staging(connection: Connection, rows: Sequence[SignatureRow]) -> None:
    columns = [c.name for c in staging.columns]
    staged = [{c: getattr(r, c) for c in columns} for r in rows]
    consents = [
        {"line": r.line, "purpose": p, "granted": g, "wording_version": v}
        for r in rows
        for p, (g, v) in r.consents.items()
    ]
    connection.execute(insert(staging), staged)
    if consents:
        connection.execute(insert(consent_staging), consents)


# The petition row is the lock that ranks signatures: taking it first makes `seq` gap-free
# and the count exact however many processes sign at once.
_LOCK_PETITION = text(
    "UPDATE petitions SET signature_count = signature_count WHERE id = :pid "
    "RETURNING signature_count"
)
_NEW_SUPPORTERS = text(
    "INSERT INTO supporters (email, first_name, last_name, postal_code, departement, region,"
    " locale, created_at) "
    "SELECT email, first_name, last_name, postal_code, departement, region, 'fr', :now "
    "FROM signature_staging WHERE email IS NOT NULL "
    "ON CONFLICT (email) DO NOTHING"
)
# Emailed and paper rows are ranked in two statements so that each count is a rowcount.
_NEW_EMAILED = text(
    "INSERT INTO signatures (petition_id, supporter_id, paper_key, seq, signed_at, recorded_at,"
    " source, enrol) "
    "SELECT :pid, sup.id, NULL, :base + ROW_NUMBER() OVER (ORDER BY st.line), st.signed_at,"
    " :now, :source, :enrol "
    "FROM signature_staging st JOIN supporters sup ON sup.email = st.email "
    "WHERE NOT EXISTS (SELECT 1 FROM signatures x"
    " WHERE x.petition_id = :pid AND x.supporter_id = sup.id)"
)
_NEW_PAPER = text(
    "INSERT INTO signatures (petition_id, supporter_id, paper_key, seq, signed_at, recorded_at,"
    " source, enrol) "
    "SELECT :pid, NULL, st.paper_key, :base + ROW_NUMBER() OVER (ORDER BY st.line),"
    " st.signed_at, :now, :source, :enrol "
    "FROM signature_staging st "
    "WHERE st.email IS NULL AND NOT EXISTS (SELECT 1 FROM signatures x"
    " WHERE x.petition_id = :pid AND x.paper_key = st.paper_key)"
)
# Consent travels with the signature it was given on: only new signatures record it, so a
# re-import records nothing twice.
_NEW_CONSENTS = text(
    "INSERT INTO consents (supporter_id, purpose, granted, wording_version, source, recorded_at) "
    "SELECT sig.supporter_id, cs.purpose, cs.granted, cs.wording_version, :label, sig.signed_at "
    "FROM consent_staging cs "
    "JOIN signature_staging st ON st.line = cs.line "
    "JOIN supporters sup ON sup.email = st.email "
    "JOIN signatures sig ON sig.petition_id = :pid AND sig.supporter_id = sup.id "
    "WHERE sig.seq > :base"
)
_SET_COUNT = text("UPDATE petitions SET signature_count = :count WHERE id = :pid")
_REACH_MILESTONES = text(
    "UPDATE milestones SET reached_at = :now, signature_id = (SELECT s.id FROM signatures s"
    " WHERE s.petition_id = milestones.petition_id AND s.seq = milestones.threshold) "
    "WHERE petition_id = :pid AND reached_at IS NULL AND threshold <= :count "
    "RETURNING threshold, signature_id"
)


def record(
    session: Session,
    *,
    petition_id: int,
    rows: Sequence[SignatureRow],
    now: datetime,
    source: str,
    enrol: bool,
) -> Outcome:
    """Record a batch of already-validated, de-duplicated rows. Does not commit."""
    connection = session.connection()
    _staging_ready(connection)
    _load_staging(connection, rows)
    connection.execute(_NEW_SUPPORTERS, {"now": now})
    base = connection.execute(_LOCK_PETITION, {"pid": petition_id}).scalar_one()
    params: dict[str, Any] = {"pid": petition_id, "now": now, "source": source, "enrol": enrol}
    emailed = connection.execute(_NEW_EMAILED, {**params, "base": base}).rowcount
    paper = connection.execute(_NEW_PAPER, {**params, "base": base + emailed}).rowcount
    outcome = Outcome(imported=emailed, paper=paper, duplicates=len(rows) - emailed - paper)
    if emailed + paper:
        count = base + emailed + paper
        connection.execute(_SET_COUNT, {"pid": petition_id, "count": count})
        connection.execute(
            _NEW_CONSENTS, {"pid": petition_id, "base": base, "label": f"signature:{source}"}
        )
        outcome.milestones = check_milestones(
            session, petition_id=petition_id, count=count, now=now
        )
    return outcome


def check_milestones(session: Session, *, petition_id: int, count: int, now: datetime) -> list[int]:
    """Mark every threshold the count has reached, once; emit `milestone.reached`."""
    reached = (
        session.connection()
        .execute(_REACH_MILESTONES, {"pid": petition_id, "count": count, "now": now})
        .all()
    )
    for threshold, signature_id in reached:
        events.append(
            session,
            kind="milestone.reached",
            source_key=f"milestone:{petition_id}:{threshold}",
            occurred_at=now,
            petition_id=petition_id,
            payload={"threshold": threshold, "signature_id": signature_id},
        )
    return sorted(t for t, _ in reached)
