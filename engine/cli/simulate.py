"""`mobilise simulate`: the real engine in virtual time on a throwaway SQLite database.

Signers arrive at the given rate, some consented, some already gave, some give during the
journey; the same `tick` as production runs every simulated hour; the outbox is then
tallied per day and step. Randomness lives here, seeded, never in the rules.
"""

from __future__ import annotations

import random
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import typer
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.cli.common import parse_now, reports_errors, settings
from engine.cli.journeys import load
from engine.errors import Invalid, NotFound
from engine.rules.conditions import Condition
from engine.rules.geo import place_of
from engine.rules.signers import SignatureRow
from engine.store import donations, journeys, migrate, passes, petitions, signatures
from engine.store.db import make_engine, make_sessionmaker
from engine.store.donations import DonationRow
from engine.store.models import Enrolment, OutboxMessage, Petition

POSTAL_CODES = ("75011", "69003", "35000", "13001", "33000", "59000", "31000", "44000")


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


@reports_errors
def simulate(
    journey: str = typer.Argument(..., help="Journey id, e.g. stop-reconnaissance-faciale."),
    supporters: int = typer.Option(1000, help="How many people sign."),
    days: int = typer.Option(30, help="Simulated days."),
    signing_rate: float = typer.Option(None, help="Signatures per day (default: all on day 1)."),
    already: int = typer.Option(0, help="Signatures counted before the start (milestones)."),
    consent_rate: float = typer.Option(0.6, help="Share ticking each consent box."),
    donor_rate: float = typer.Option(0.1, help="Share who gave before signing."),
    gift_rate: float = typer.Option(0.05, help="Share who give during the simulation."),
    start: str = typer.Option("2026-05-11T08:00:00+00:00", help="Virtual start (ISO 8601)."),
    seed: int = typer.Option(1, help="Random seed: same seed, same run."),
) -> None:
    """Run JOURNEY in virtual time on a throwaway database; print sends per day and step."""
    root = settings().project_dir
    declared = load(root)
    if declared.problems:
        raise Invalid("the declared files have problems", problems=declared.problems)
    campaign = next((c for c, j in declared.journeys if j.id == journey), None)
    if campaign is None:
        raise NotFound(f"no journey '{journey}'", hint="see journeys/*.yaml")
    begin = parse_now(start)
    people = signers(
        supporters,
        start=begin,
        days=days,
        rate=signing_rate,
        rng=random.Random(seed),
        consent_rate=consent_rate,
        donor_rate=donor_rate,
        gift_rate=gift_rate,
    )
    with tempfile.TemporaryDirectory(prefix="mobilise-sim-") as scratch:
        url = f"sqlite:///{Path(scratch) / 'sim.db'}"
        migrate.upgrade(url)
        engine = make_engine(url)
        try:
            sessions = make_sessionmaker(engine)
            with sessions.begin() as session:
                petition = petitions.upsert(session, campaign.petition, now=begin)
                session.execute(
                    update(Petition)
                    .where(Petition.id == petition.id)
                    .values(signature_count=already)
                )
                signatures.check_milestones(
                    session, petition_id=petition.id, count=already, now=begin
                )
                journeys.sync_journeys(session, [campaign], begin - timedelta(days=1))
                pid = petition.id
            _run(sessions, people, pid, begin, days, declared.conditions)
            with sessions.begin() as session:
                _report(session, journey, begin, days, campaign.timezone)
        finally:
            engine.dispose()


def _run(
    sessions: sessionmaker[Session],
    people: list[Signer],
    pid: int,
    begin: datetime,
    days: int,
    named: Mapping[str, Condition],
) -> None:
    hour = timedelta(hours=1)
    pending = sorted(people, key=lambda s: s.signed_at)
    gifts = sorted((s for s in people if s.gives_at), key=lambda s: s.gives_at or begin)
    line = 1
    for h in range(days * 24 + 1):
        now = begin + h * hour
        with sessions.begin() as session:
            batch = [s for s in pending[:50_000] if s.signed_at <= now]
            if batch:
                pending = pending[len(batch) :]
                signatures.record(
                    session,
                    petition=petitions.facts(session, pid),
                    rows=_rows(batch, line),
                    now=now,
                    source="sim",
                    enrol=True,
                )
                line += len(batch)
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
            due = [s for s in gifts if s.gives_at is not None and s.gives_at <= now]
            gifts = gifts[len(due) :]
            donations.record(
                session,
                [
                    DonationRow(
                        s.email, 3000, "EUR", s.gives_at or now, "one-off", f"sim-gift-{s.email}"
                    )
                    for s in due
                ],
                now=now,
            )
            passes.tick(session, now=now, segments=named)


def _report(session: Session, journey_id: str, begin: datetime, days: int, zone: str) -> None:
    tz = ZoneInfo(zone)
    loaded = journeys.by_id(session, journey_id)
    assert loaded is not None
    steps = [s.id for s in loaded.journey.steps if "send" in type(s).model_fields]
    sent: Counter[tuple[str, str]] = Counter()
    skipped: Counter[tuple[str, str]] = Counter()
    end = begin + timedelta(days=days)
    for due_at, step, status, reason in session.execute(
        select(
            OutboxMessage.due_at, OutboxMessage.step_id, OutboxMessage.status, OutboxMessage.reason
        ).where(OutboxMessage.journey_id == journey_id)
    ):
        if status == "queued" and due_at <= end:
            sent[(due_at.astimezone(tz).date().isoformat(), step)] += 1
        else:
            skipped[(step, reason or status)] += 1
    width = max([10, *[len(s) for s in steps]])
    typer.echo(f"journey {journey_id}: emails per day ({zone}) and step")
    typer.echo("day        " + " ".join(f"{s:>{width}}" for s in steps))
    for day in sorted({d for d, _ in sent}):
        typer.echo(f"{day} " + " ".join(f"{sent[(day, s)]:>{width}}" for s in steps))
    typer.echo(
        "total      "
        + " ".join(f"{sum(n for (_, st), n in sent.items() if st == s):>{width}}" for s in steps)
    )
    for (step, reason), count in sorted(skipped.items()):
        typer.echo(f"not sent in the window: {step}: {count} ({reason})")
    exits = Counter(
        reason
        for (reason,) in session.execute(
            select(Enrolment.exit_reason).where(Enrolment.journey_id == journey_id)
        )
    )
    typer.echo(
        "enrolments: "
        + ", ".join(
            f"{r or 'active'} {n}" for r, n in sorted(exits.items(), key=lambda kv: kv[0] or "")
        )
    )
