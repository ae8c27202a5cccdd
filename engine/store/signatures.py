"""Recording signatures set-based: web batches and CSV imports share one pipeline.

A batch's rows go to the staging table (engine/store/staging.py), then a handful of
INSERT … SELECT statements create supporters, signatures (ranked by `seq`), consents and
milestones. No statement here runs once per signer.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import TextClause
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.rules.signature_rows import SignatureRow
from engine.store import milestones, pipeline, staging
from engine.store.petitions import PetitionFacts
from engine.store.pipeline import sql
from engine.store.signature_days import DIALECTS, add_days
from engine.store.staging import SLOTS


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


# No statement below takes another's result as a parameter: each reads what it needs (the
# count so far) from the petition row, so that PostgreSQL receives the whole batch in one
# pipeline, one round trip (`pipeline.execute_all`). The petition row is the lock that ranks
# signatures: taking it first makes `seq` gap-free and the count exact however many
# processes sign at once; until `_SET_COUNT`, its `signature_count` is the count before
# the batch, and the batch's rows are those ranked above it.
_LOCK_PETITION = sql("UPDATE petitions SET signature_count = signature_count WHERE id = :pid")
_BEFORE = "(SELECT signature_count FROM petitions WHERE id = :pid)"
_SO_FAR = (
    f"{_BEFORE} + (SELECT count(*) FROM signatures WHERE petition_id = :pid AND seq > {_BEFORE})"
)
# ORDER BY email: concurrent batches lock new supporter keys in one order, so never deadlock.
# A new supporter's last contact is their signature (engine/store/retention.py).
_NEW_SUPPORTERS = sql(
    "INSERT INTO supporters (email, first_name, last_name, postal_code, departement, region,"
    " locale, created_at, last_contact_at) "
    "SELECT email, first_name, last_name, postal_code, departement, region, 'fr', :now,"
    " signed_at "
    "FROM signature_staging WHERE email IS NOT NULL ORDER BY email "
    "ON CONFLICT (email) DO NOTHING"
)
_SLOTS = ", ".join(SLOTS)
# An import on PostgreSQL resolves each staged email to its supporter in one pass (one join
# of `supporters`, where the previous form joined it twice), inserting the missing ones, and
# writes the ids to `signature_resolved`: the signature statement reads them there, and
# looks for an earlier signature only where the supporter was known before the batch.
# New supporters are numbered in file order, the order their signatures and consents are
# inserted in, so that those tables' indexes on supporter_id grow at their right-hand end
# (the insert itself stays in email order: concurrent batches lock new emails in one order).
# No ON CONFLICT: speculative insertion costs about 60 % more a row, and DO NOTHING on a
# known email costs as much as an insert (measured on 140,000 rows: 2.0 s against 1.3 s
# new, 1.3 s against 0.2 s known). A signer inserting one of these emails meanwhile makes
# it fail: see `_resolve_supporters`. (`supporters_id_seq`: the column's serial sequence.)
_RESOLVE_SUPPORTERS = sql(
    "WITH m AS MATERIALIZED (SELECT st.*, sup.id AS supporter_id"
    " FROM signature_staging st LEFT JOIN supporters sup ON sup.email = st.email"
    " WHERE st.email IS NOT NULL), "
    "numbered AS MATERIALIZED (SELECT nextval('supporters_id_seq') AS id, * FROM m"
    " WHERE supporter_id IS NULL ORDER BY line), "
    # Run to completion though nothing reads it (as every data-modifying WITH).
    "added AS (INSERT INTO supporters (id, email, first_name, last_name, postal_code,"
    " departement, region, locale, created_at, last_contact_at) "
    "SELECT id, email, first_name, last_name, postal_code, departement, region, 'fr', :now,"
    " signed_at FROM numbered ORDER BY email) "
    f"INSERT INTO signature_resolved SELECT line, supporter_id, true, signed_at, {_SLOTS} FROM m"
    f" WHERE supporter_id IS NOT NULL UNION ALL SELECT line, id, false, signed_at, {_SLOTS}"
    " FROM numbered"
)
# CROSS JOIN fixes SQLite's join order (the staging table drives, the unique indexes are
# probed; the other way round is quadratic); PostgreSQL plans it as an inner join.
# Emailed and paper rows are ranked in two statements so that each count is a rowcount.
_INSERT_SIGNATURES = (
    "INSERT INTO signatures (petition_id, supporter_id, paper_key, seq, signed_at, recorded_at,"
    " source, enrol) "
)
_RANK = f"{_SO_FAR} + ROW_NUMBER() OVER (ORDER BY st.line)"
_EMAILED_FROM = (
    "FROM signature_staging st CROSS JOIN supporters sup WHERE sup.email = st.email "
    "AND NOT EXISTS (SELECT 1 FROM signatures x"
    " WHERE x.petition_id = :pid AND x.supporter_id = sup.id)"
)
# Supporters resolved in `signature_resolved` (`_RESOLVE_SUPPORTERS`): a new supporter has
# signed nothing yet, so only the known ones are looked up in `signatures`. Under the OR the
# lookup stays a subplan that rows of new supporters never run (hashed when many known ones
# do), rather than an anti-join reading all of the petition's signatures for every batch.
_RESOLVED_FROM = (
    "FROM signature_resolved st WHERE NOT st.known OR NOT EXISTS (SELECT 1 FROM signatures x"
    " WHERE x.petition_id = :pid AND x.supporter_id = st.supporter_id)"
)


def _new_emailed(resolved: bool) -> TextClause:
    supporter, source = (
        ("st.supporter_id", _RESOLVED_FROM) if resolved else ("sup.id", _EMAILED_FROM)
    )
    return sql(
        f"{_INSERT_SIGNATURES}SELECT :pid, {supporter}, NULL, {_RANK}, st.signed_at, :now,"
        f" :source, :enrol {source}"
    )


_NEW_EMAILED = _new_emailed(resolved=False)
_NEW_EMAILED_RESOLVED = _new_emailed(resolved=True)


def _new_paper(dialect: str) -> TextClause:
    # OFFSET 0 keeps PostgreSQL's check a probe of the partial paper-key index for each
    # paper row, rather than an anti-join reading all the petition's signatures every batch
    # (SQLite probes anyway, and has no OFFSET without LIMIT).
    probe = " OFFSET 0" if dialect == "postgresql" else ""
    return sql(
        "INSERT INTO signatures (petition_id, supporter_id, paper_key, seq, signed_at,"
        " recorded_at, source, enrol) "
        f"SELECT :pid, NULL, st.paper_key, {_SO_FAR} + ROW_NUMBER() OVER (ORDER BY st.line),"
        " st.signed_at, :now, :source, :enrol "
        "FROM signature_staging st "
        "WHERE st.email IS NULL AND NOT EXISTS (SELECT 1 FROM signatures x"
        f" WHERE x.petition_id = :pid AND x.paper_key = st.paper_key{probe})"
    )


_NEW_PAPER = {dialect: _new_paper(dialect) for dialect in ("postgresql", "sqlite")}


_INSERT_CONSENTS = (
    "INSERT INTO consents (supporter_id, purpose, granted, wording_version, source, recorded_at) "
)


def _consent_choices(purposes: tuple[str, ...], row: str) -> tuple[str, str]:
    """The granted value (from the slots of `row`) and the relation of purposes to cross
    join, one row per purpose: one statement for every purpose."""
    slots = " ".join(f"WHEN {i} THEN {row}.{slot}" for i, slot in enumerate(SLOTS[: len(purposes)]))
    choices = " UNION ALL ".join(
        f"SELECT {i} AS slot, :purpose_{i} AS purpose, :version_{i} AS version"
        for i in range(len(purposes))
    )
    return f"CASE p.slot {slots} END", f"({choices}) p"


# What a signature says about a purpose is added to the supporter's consent history (append
# only; the latest row is in force) when it is news: the first answer on record, whatever
# it is; or a grant given after the latest row, when that row refused (a later opt-in) or
# granted another wording version. A refusal never replaces a grant (an unticked box is no
# withdrawal: that is what unsubscribing is for), and what is already on record is not
# recorded again, so a replayed batch or re-imported file records nothing twice.
_NEWS = (
    "(l.id IS NULL OR (a.granted AND l.recorded_at < a.signed_at"
    " AND (NOT l.granted OR l.wording_version <> a.version)))"
)


@functools.cache
def _new_consents(purposes: tuple[str, ...], dialect: str, resolved: bool = False) -> str:
    """The consent rows a batch adds (the SELECT of an INSERT): for every emailed row of the
    batch, new signature or not, and each purpose it answers, the latest row on record for
    that purpose (from `ix_consents_supporter_purpose`) decides (`_NEWS`). `resolved`
    (PostgreSQL imports): from `signature_resolved`, where supporters created by the batch,
    which have no history, are not looked up."""
    granted, choices = _consent_choices(purposes, "st")
    if resolved:
        source = f"signature_resolved st CROSS JOIN {choices} WHERE"
        answered = "st.supporter_id, st.known"
        known = "a.known AND "
    else:
        # CROSS JOIN fixes SQLite's join order (see `_EMAILED_FROM`).
        source = (
            f"signature_staging st CROSS JOIN supporters sup CROSS JOIN {choices}"
            " WHERE sup.email = st.email AND"
        )
        answered, known = "sup.id AS supporter_id", ""
    answered += f", p.purpose, p.version, st.signed_at, {granted} AS granted"
    latest = (
        "FROM consents c WHERE {known}c.supporter_id = {supporter} AND c.purpose = {purpose}"
        " ORDER BY c.id DESC LIMIT 1"
    )
    if dialect == "postgresql":
        # LATERAL: one index probe per answer, whatever the planner guesses of the sizes.
        probe = latest.format(known=known, supporter="a.supporter_id", purpose="a.purpose")
        return (
            f"SELECT a.* FROM (SELECT {answered} FROM {source} {granted} IS NOT NULL) a"
            " LEFT JOIN LATERAL (SELECT c.id, c.granted, c.recorded_at, c.wording_version"
            f" {probe}) l ON true WHERE {_NEWS}"
        )
    # SQLite: the latest row's id from a correlated subquery, then that row by its rowid.
    probe = latest.format(known="", supporter="sup.id", purpose="p.purpose")
    return (
        f"SELECT a.* FROM (SELECT {answered}, (SELECT c.id {probe}) AS latest FROM {source}"
        f" {granted} IS NOT NULL) a LEFT JOIN consents l ON l.id = a.latest WHERE {_NEWS}"
    )


_SELECT_GIVEN = "SELECT supporter_id, purpose, granted, version, :label, signed_at FROM"


@functools.cache
def _consents_statement(purposes: tuple[str, ...], dialect: str) -> TextClause:
    return sql(f"{_INSERT_CONSENTS}{_SELECT_GIVEN} ({_new_consents(purposes, dialect)}) AS given")


# Signatures per UTC day (engine/store/signature_days.py): the batch's new ones, added to
# the petition's days. Before `_SET_COUNT`, the rows ranked above the count are the
# batch's, read along (petition_id, seq).
_NEW_DAYS = {
    dialect: sql(add_days(dialect, f"signatures WHERE petition_id = :pid AND seq > {_BEFORE}"))
    for dialect in DIALECTS
}
# The same, in the statement that inserts them (`new`: its rows).
_DATED = add_days("postgresql", "new")


@functools.cache
def _new_emailed_with_consents(purposes: tuple[str, ...], resolved: bool) -> TextClause:
    """PostgreSQL, staging table: the emailed signatures and the consents in one statement
    (one round trip of the pipeline fewer; with `resolved` the consents read the supporters
    resolved for the batch, not `supporters` again by email). Returns the number of
    signatures inserted, and adds them to the petition's count and to its days: the
    statements after it then count only the rows ranked above that (paper ones), not the
    whole batch again."""
    supporter, source = (
        ("st.supporter_id", _RESOLVED_FROM) if resolved else ("sup.id", _EMAILED_FROM)
    )
    return sql(
        f"WITH new AS MATERIALIZED (SELECT {supporter} AS supporter_id, st.signed_at,"
        f" {_RANK} AS seq {source}), "
        f"signed AS ({_INSERT_SIGNATURES}SELECT :pid, supporter_id, NULL, seq, signed_at, :now,"
        " :source, :enrol FROM new), "
        f"given AS ({_INSERT_CONSENTS}{_SELECT_GIVEN}"
        f" ({_new_consents(purposes, 'postgresql', resolved)}) AS given), "
        "counted AS (UPDATE petitions SET signature_count = signature_count + (SELECT count(*)"
        " FROM new) WHERE id = :pid), "
        f"dated AS ({_DATED}) "
        "SELECT count(*) FROM new"
    )


_SET_COUNT = sql(f"UPDATE petitions SET signature_count = {_SO_FAR} WHERE id = :pid")


_REACH_COUNTED = milestones.reaching(_BEFORE)  # after `_SET_COUNT`: the count with the batch


def _bulk_settings(session: Session) -> None:
    """An import batch's own settings on PostgreSQL (its transaction only)."""
    connection = session.connection()
    # A durable commit per batch buys nothing here: a crash loses at most the last
    # batches, and a re-run imports them again. (SQLite's writes are already NORMAL.)
    connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
    # The hashes of a batch's joins then fit in memory rather than spilling to disk.
    connection.exec_driver_sql("SET LOCAL work_mem = '64MB'")
    # Each statement runs once, in tenths of a second: compiling it is pure cost, and the
    # temporary tables' guessed sizes (they have no statistics) pushed the signature
    # statement's estimate over `jit_above_cost` (bench/README.md).
    connection.exec_driver_sql("SET LOCAL jit = off")


def _resolve_supporters(session: Session, now: datetime) -> bool:
    """An import's supporters on PostgreSQL, the cheap way, resolved into
    `signature_resolved`; False when the batch must take the safe form (a signer came in
    meanwhile with one of these emails), whose statements join `supporters` by email."""
    try:
        with session.begin_nested():  # the SAVEPOINT is taken with the connection
            session.connection().execute(_RESOLVE_SUPPORTERS, {"now": now})
    except IntegrityError:
        return False
    return True


def record(
    session: Session,
    *,
    petition: PetitionFacts,
    rows: Sequence[SignatureRow] | staging.Staged,
    now: datetime,
    source: str,
    enrol: bool,
    bulk: bool = False,
) -> Outcome:
    """Record a batch of validated rows, unique by `SignatureRow.key`. Does not commit.

    Statements that a batch cannot need are skipped; on PostgreSQL the rest travel in one
    pipeline, with a web batch's rows bound as arrays: one round trip whatever its size.
    `bulk` (imports) chooses the statements that are cheapest for large batches of mostly
    new signers; an import may hand over rows already `stage`d."""
    purposes = sorted(petition.consent_versions)
    connection = session.connection()
    dialect = connection.dialect.name
    inline = (
        dialect == "postgresql"
        and not isinstance(rows, staging.Staged)
        and len(rows) <= staging.INLINE_MAX
    )
    arrays: dict[str, Any] = {}
    if isinstance(rows, staging.Staged) or not inline:
        batch = rows if isinstance(rows, staging.Staged) else staging.stage(rows, purposes, dialect)
        staging.load(connection, batch, len(purposes))
        has_email, has_paper, size = batch.emailed, batch.paper, batch.size
    else:
        arrays = staging.inline_values(rows, purposes)
        has_email = any(r.email for r in rows)
        has_paper = any(r.email is None for r in rows)
        size = len(rows)

    def staged(clause: TextClause, values: dict[str, Any]) -> tuple[TextClause, dict[str, Any]]:
        return (
            (staging.inline(clause, connection.dialect), values | arrays)
            if inline
            else (clause, values)
        )

    pid = petition.id
    params: dict[str, Any] = {"pid": pid, "now": now, "source": source, "enrol": enrol}
    steps: dict[str, tuple[TextClause, dict[str, Any]]] = {}
    if inline:
        steps["probe"] = (pipeline.PROBE_ONLY, {})
    # An import's batch on PostgreSQL (always through the staging table): its settings, and
    # its supporters resolved ahead of the pipeline, since that may need its savepoint.
    pg_import = bulk and dialect == "postgresql" and not inline
    if pg_import:
        _bulk_settings(session)
    resolved = has_email and pg_import and _resolve_supporters(session, now)
    if has_email and not resolved:
        steps["supporters"] = staged(_NEW_SUPPORTERS, {"now": now})
    steps["lock"] = (_LOCK_PETITION, {"pid": pid})
    choices: dict[str, Any] = {
        f"{key}_{i}": value
        for i, purpose in enumerate(purposes)
        for key, value in (("purpose", purpose), ("version", petition.consent_versions[purpose]))
    }
    labels = {"pid": pid, "label": f"signature:{source}"}
    # Signatures and consents in one statement where it can be (not SQLite: no INSERT in
    # a WITH); it also spares the consents a second join (bench/README.md).
    together = has_email and bool(purposes) and dialect == "postgresql" and not inline
    if together:
        steps["emailed"] = (
            _new_emailed_with_consents(tuple(purposes), resolved),
            params | labels | choices,
        )
    elif resolved:
        steps["emailed"] = (_NEW_EMAILED_RESOLVED, params)
    elif has_email:
        steps["emailed"] = staged(_NEW_EMAILED, params)
    if has_paper:
        steps["paper"] = staged(_NEW_PAPER[dialect], params)
    if has_email and purposes and not together:
        steps["consents"] = staged(_consents_statement(tuple(purposes), dialect), labels | choices)
    # After `together`, whose statement dates its own signatures (and has moved the count
    # past them): here only the paper ones are left.
    if not together or has_paper:
        steps["days"] = (_NEW_DAYS[dialect], {"pid": pid})
    steps["count"] = (_SET_COUNT, {"pid": pid})
    # Always checked (one indexed statement in the same round trip), so that milestones
    # never depend on how fresh the caller's petition facts are.
    steps["milestones"] = (_REACH_COUNTED, {"pid": pid, "now": now})
    if inline:
        steps["plan as usual"] = (pipeline.PLAN_AS_USUAL, {})
    done = pipeline.execute_all(connection, steps)
    emailed = done["emailed"].rowcount if has_email else 0
    if together:
        emailed = done["emailed"].rows[0][0]
    paper = done["paper"].rowcount if has_paper else 0
    outcome = Outcome(imported=emailed, paper=paper, duplicates=size - emailed - paper)
    outcome.milestones = milestones.announce(session, pid, done["milestones"].rows, now)
    if not inline:
        staging.done(connection, size)
    return outcome
