"""Web signatures with group commit (engine/store/group_commit.py): requests that arrive
together share one transaction, and a signature is answered once committed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import anyio.to_thread
from sqlalchemy.orm import Session, sessionmaker

from engine.config import Secret
from engine.errors import MobiliseError, Unavailable
from engine.rules import optin
from engine.rules.signature_rows import SignatureRow
from engine.rules.supporters import email_hashes
from engine.store import confirmations, petitions, signatures, suppressions
from engine.store.group_commit import GroupCommit
from engine.store.petitions import PetitionFacts


@dataclass(frozen=True)
class _Facts:
    facts: PetitionFacts
    purposes: frozenset[str]


@dataclass(frozen=True)
class _Pending:
    slug: str
    row: SignatureRow


class SignatureQueue:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        clock: Callable[[], datetime],
        secret: Secret,
        max_batch: int = 256,
        wait_s: float = 0.002,
        timeout_s: float = 30.0,
        facts_ttl_s: float = 1.0,
        confirm_days: int = 7,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._secret = secret
        # Double opt-in: how long a confirmation link works (MOBILISE_CONFIRM_DAYS).
        self._confirm_days = confirm_days
        # A petition's id and consent versions, read at most once a `facts_ttl_s` per
        # process: a wording changed by `mobilise sync` is recorded within that delay.
        self._facts_ttl_s = facts_ttl_s
        self._facts: dict[str, tuple[datetime, _Facts]] = {}
        self._batches: GroupCommit[_Pending, None] = GroupCommit(
            self._write,
            expired=_expired,
            max_batch=max_batch,
            wait_s=wait_s,
            timeout_s=timeout_s,
            after=self._after,
        )
        # Called after each batch that recorded a signature (the API wakes the journey pass),
        # and after each that queued a confirmation email (the API wakes the dispatch).
        self.on_signed: Callable[[], object] | None = None
        self.on_confirmation: Callable[[], object] | None = None
        self._asked = False

    def start(self) -> None:
        self._batches.start()

    async def stop(self) -> None:
        await self._batches.stop()

    async def sign(self, slug: str, row: SignatureRow) -> None:
        """Returns once the signature is committed; raises the domain error if any."""
        await self._batches.submit(_Pending(slug, row))

    def _after(self, results: Sequence[Exception | None]) -> None:
        if self.on_signed is not None and any(r is None for r in results):
            self.on_signed()
        if self._asked and self.on_confirmation is not None:
            self.on_confirmation()
        self._asked = False

    def _write(self, batch: list[_Pending]) -> list[Exception | None]:
        now = self._clock()
        results: list[Exception | None] = [None] * len(batch)
        by_slug: dict[str, dict[str, SignatureRow]] = {}
        with self._sessions.begin() as session:
            for index, pending in enumerate(batch):
                rows = by_slug.setdefault(pending.slug, {})
                # Same signer twice in one batch: one row, both requests answered alike.
                rows.setdefault(pending.row.key, pending.row._replace(line=index + 1))
            returning = self._returning(session, by_slug)
            for slug, rows in by_slug.items():
                try:
                    petition = self._petition(session, slug, now)
                except MobiliseError as exc:
                    for index, pending in enumerate(batch):
                        if pending.slug == slug:
                            results[index] = exc
                    continue
                self._record(session, petition.facts, list(rows.values()), now)
            suppressions.relink_erased(session, returning)
        return results

    def _record(
        self, session: Session, petition: PetitionFacts, rows: list[SignatureRow], now: datetime
    ) -> None:
        if not petition.double_opt_in:
            signatures.record(
                session, petition=petition, rows=rows, now=now, source="web", enrol=True
            )
            return
        # Double opt-in (engine/store/confirmations.py): nothing is granted, nobody enrolled,
        # before the address is confirmed; counted before then only if the petition says so.
        asked = confirmations.sign(
            session,
            petition=petition,
            rows=rows,
            now=now,
            expires_at=optin.expires_at(now, self._confirm_days),
        )
        self._asked = self._asked or asked > 0

    def _returning(
        self, session: Session, by_slug: dict[str, dict[str, SignatureRow]]
    ) -> dict[str, str]:
        """address -> hash, for the signers whose address was erased at their request: the
        signature counts, but they come back without consent and receive nothing, not even
        the thank-you (docs/privacy.md). The answer is the same as for anyone, so that the
        form does not tell who asked for erasure. Their rows lose their consents here."""
        hashes = {
            row.email: email_hashes(row.email, self._secret)
            for rows in by_slug.values()
            for row in rows.values()
            if row.email is not None
        }
        erased = suppressions.erased_among(
            session, [digest for digests in hashes.values() for digest in digests]
        )
        if not erased:
            return {}
        # The hash each erased address's suppression keeps (made before a rotation of the
        # secret key: under its fallback).
        kept = {
            email: next(digest for digest in digests if digest in erased)
            for email, digests in hashes.items()
            if not erased.isdisjoint(digests)
        }
        for rows in by_slug.values():
            for key, row in rows.items():
                if row.email in kept:
                    rows[key] = row._replace(consents={})
        return kept

    async def purposes(self, slug: str) -> frozenset[str]:
        """The consent purposes the petition declares (what a signature may answer, checked
        before it is queued), from the same cache as the writer's; NotFound if unknown."""
        facts = self._cached(slug, self._clock())
        if facts is None:
            facts = await anyio.to_thread.run_sync(self._read, slug)
        return facts.purposes

    def _read(self, slug: str) -> _Facts:
        with self._sessions() as session:
            return self._petition(session, slug, self._clock())

    def _cached(self, slug: str, now: datetime) -> _Facts | None:
        cached = self._facts.get(slug)
        if cached is not None and 0 <= (now - cached[0]).total_seconds() < self._facts_ttl_s:
            return cached[1]
        return None

    def _petition(self, session: Session, slug: str, now: datetime) -> _Facts:
        facts = self._cached(slug, now)
        if facts is None:
            read = petitions.facts(session, slug)
            facts = _Facts(read, frozenset(read.consent_versions))
            self._facts[slug] = (now, facts)
        return facts


def _expired() -> Unavailable:
    return Unavailable(
        "the signature could not be stored in time; try again",
        hint="the database is slow or unreachable",
    )
