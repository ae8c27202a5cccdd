"""The simulated people and what they do outside the engine: sign, give, or both.

Randomness lives here, seeded, never in the rules. `Timeline` holds these facts in time
order and records them when the virtual clock reaches them: signatures and gifts by the
virtual hour (a signature made at 08:20 is recorded at 09:00, as an hourly pass would see
it), and the milestone push of `--milestone-at` at its instant.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby

from sqlalchemy.orm import Session

from engine.rules.geo import place_of
from engine.rules.signature_rows import SignatureRow
from engine.store import donations, petitions, signatures, virtual
from engine.store.donations import DonationRow

POSTAL_CODES = ("75011", "69003", "35000", "13001", "33000", "59000", "31000", "44000")
HOUR = timedelta(hours=1)
# Rows per recorded batch: bounds the staging table, whatever the signing rate.
CHUNK = 50_000


@dataclass(frozen=True)
class Signer:
    email: str
    signed_at: datetime
    updates: bool
    fundraising: bool
    postal_code: str
    gave_before: bool
    gives_at: datetime | None


def signers(
    count: int,
    *,
    start: datetime,
    days: int,
    rate: float | None,
    rng: random.Random,
    consent_rate: float,
    donor_rate: float,
    gift_rate: float,
) -> list[Signer]:
    """`count` people signing at `rate` a day from `start` (all within the first day when
    `rate` is None); some consented, some gave before, some give during the run."""
    per_day = rate if rate else float(count)
    end = start + timedelta(days=days)
    found = []
    for i in range(count):
        signed = start + timedelta(days=i / per_day)
        gives = None
        if rng.random() < gift_rate and signed < end:
            gives = signed + (end - signed) * rng.random()
        found.append(
            Signer(
                email=f"sim{i}@example.org",
                signed_at=signed,
                updates=rng.random() < consent_rate,
                fundraising=rng.random() < consent_rate,
                postal_code=rng.choice(POSTAL_CODES),
                gave_before=rng.random() < donor_rate,
                gives_at=gives,
            )
        )
    return found


def on_the_hour(begin: datetime, at: datetime) -> datetime:
    """The first whole virtual hour (counted from `begin`) at or after `at`."""
    return begin + HOUR * -(-(at - begin) // HOUR)


def _rows(batch: list[Signer], first_line: int) -> list[SignatureRow]:
    rows = []
    for offset, s in enumerate(batch):
        place = place_of(s.postal_code)
        rows.append(
            SignatureRow(
                line=first_line + offset,
                email=s.email,
                first_name=None,
                last_name=None,
                postal_code=s.postal_code,
                departement=place.departement if place else None,
                region=place.region if place else None,
                paper_key=None,
                signed_at=s.signed_at,
                consents={"updates": s.updates, "fundraising": s.fundraising},
            )
        )
    return rows


@dataclass
class Timeline:
    """The run's scheduled facts, consumed in time order by `record`."""

    petition_id: int
    begin: datetime
    # (instant, signers recorded then), ascending
    arrivals: list[tuple[datetime, list[Signer]]]
    # (instant, giver), ascending
    gifts: list[tuple[datetime, Signer]]
    # (instant, count the petition reaches then) for `--milestone-at`
    push: tuple[datetime, int] | None = None
    line: int = 1
    _next_arrival: int = field(default=0, repr=False)
    _next_gift: int = field(default=0, repr=False)

    @classmethod
    def of(
        cls,
        people: list[Signer],
        *,
        petition_id: int,
        begin: datetime,
        push: tuple[datetime, int] | None = None,
    ) -> Timeline:
        ordered = sorted(people, key=lambda s: s.signed_at)
        arrivals = [
            (at, list(group))
            for at, group in groupby(ordered, key=lambda s: on_the_hour(begin, s.signed_at))
        ]
        # A gift is never recorded before its giver's signature: both are on the hour grid
        # and a gift comes after signing.
        gifts = sorted(
            ((on_the_hour(begin, s.gives_at), s) for s in people if s.gives_at is not None),
            key=lambda pair: pair[0],
        )
        return cls(petition_id, begin, arrivals, gifts, push)

    def next_fact(self, *, gifts: bool) -> datetime | None:
        """The instant of the next fact not yet recorded: a signature, the push, and a gift
        when `gifts` (otherwise gifts wait for the next instant something else happens:
        see engine/simulation/run.py)."""
        found = [at for at, _ in self.arrivals[self._next_arrival :][:1]]
        if gifts:
            found += [at for at, _ in self.gifts[self._next_gift :][:1]]
        if self.push is not None:
            found.append(self.push[0])
        return min(found, default=None)

    def record(self, session: Session, now: datetime) -> None:
        """Record every fact due by `now` not yet recorded: signatures (in chunks), the gifts
        their signers made before, the push, then gifts made since."""
        while self._next_arrival < len(self.arrivals):
            at, batch = self.arrivals[self._next_arrival]
            if at > now:
                break
            self._next_arrival += 1
            for start in range(0, len(batch), CHUNK):
                self._sign(session, batch[start : start + CHUNK], at)
        if self.push is not None and self.push[0] <= now:
            at, count = self.push
            virtual.raise_count(session, petition_id=self.petition_id, to=count, now=at)
            self.push = None
        due = []
        while self._next_gift < len(self.gifts) and self.gifts[self._next_gift][0] <= now:
            due.append(self.gifts[self._next_gift][1])
            self._next_gift += 1
        donations.record(
            session,
            [
                DonationRow(s.email, 3000, "EUR", s.gives_at, "one-off", f"sim-gift-{s.email}")
                for s in due
                if s.gives_at is not None
            ],
            now=now,
        )

    def _sign(self, session: Session, batch: list[Signer], now: datetime) -> None:
        signatures.record(
            session,
            petition=petitions.facts(session, self.petition_id),
            rows=_rows(batch, self.line),
            now=now,
            source="sim",
            enrol=True,
        )
        self.line += len(batch)
        before = [
            DonationRow(
                s.email,
                2500,
                "EUR",
                s.signed_at - timedelta(days=60),
                "one-off",
                f"sim-before-{s.email}",
            )
            for s in batch
            if s.gave_before
        ]
        donations.record(session, before, now=now)
