"""The demo's six weeks, instant by instant: signatures arriving on the curve of a petition
the press picks up (`crowd`), some on paper, imported each Monday through the CSV import;
the journey pass at every instant something is due; the emails due marked sent
(`virtual.mark_sent`); what readers do with them (`reactions`). engine.simulation.demo sets
the campaign up and plays it.
"""

from __future__ import annotations

import csv
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from engine.config import Secret, Settings
from engine.intake.signature_imports import import_signatures
from engine.progress import Progress
from engine.rules.conditions import Condition
from engine.rules.signature_rows import SignatureRow, signer_parser
from engine.simulation import crowd
from engine.simulation.crowd import Crowd, Person, Sheets
from engine.simulation.reactions import Reactions
from engine.simulation.run import HOUR
from engine.store import passes, petitions, signatures, virtual
from engine.track.donations import record_gifts

DAYS = 42
# The instants the demo visits, in the campaign's local time: the journey pass and the
# dispatch run then (a scheduler runs them every minute; four times a day shows the same
# campaign for a fraction of the passes). Signatures are recorded at the first instant after
# them, so a night's signers are thanked at nine.
GRID_HOURS = (9, 13, 17, 21)


@dataclass(frozen=True)
class Options:
    end: datetime
    signatures: int = 150_000
    paper_share: float = 0.03
    donor_share: float = 0.06  # signers who gave before the campaign
    seed: int = 14

    @property
    def begin(self) -> datetime:
        return self.end - timedelta(days=DAYS)


def _import_paper(
    sessions: sessionmaker[Session], sheets: Sheets, slug: str, zone: ZoneInfo, secret: Secret
) -> int:
    """A weekend's paper sheets through `mobilise import signatures` (no email: counted,
    never enrolled)."""
    with tempfile.TemporaryDirectory(prefix="mobilise-demo-") as folder:
        path = Path(folder) / "paper.csv"
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(crowd.COLUMNS)
            writer.writerows(p.cells() for p in sheets.people)
        report = import_signatures(
            sessions, slug=slug, path=path, now=lambda: sheets.imported_at, zone=zone, secret=secret
        )
    return report.outcome.paper


class Timeline:
    """The six weeks, instant by instant: its people, its clock, and what it has recorded."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        options: Options,
        *,
        slug: str,
        zone: ZoneInfo,
        named: Mapping[str, Condition],
        reactions: Reactions,
        versions: Mapping[str, str],
    ) -> None:
        self.sessions, self.settings, self.options = sessions, settings, options
        self.slug, self.zone, self.named = slug, zone, named
        self.reactions, self.versions = reactions, versions
        self.rng = reactions.rng
        self.crowd = Crowd(self.rng)
        self.hours = DAYS * 24
        paper = round(options.signatures * options.paper_share)
        self.sheets = crowd.paper(
            self.crowd, paper, begin=options.begin, end=options.end, zone=zone
        )
        online = options.signatures - sum(len(s.people) for s in self.sheets)
        self.per_hour = crowd.hourly(online, options.begin, self.hours, zone)
        self.hours_done = 0
        self.online = self.paper = self.passes = 0
        self.seconds: dict[str, float] = defaultdict(float)

    def before(self, at: datetime) -> int:
        """Signatures made before `at` (online and paper), as the curve plans them."""
        hours = int((at - self.options.begin) / HOUR)
        paper = sum(
            1 for s in self.sheets for p in s.people if p.signed_at < at and s.imported_at < at
        )
        return sum(self.per_hour[:hours]) + paper

    def _sign(self, session: Session, now: datetime) -> None:
        """The form's signers of every whole hour up to `now`, validated as every door does,
        with the earlier gifts of those who had given before."""
        facts = petitions.facts(session, self.slug)
        parse = signer_parser(
            {name: i for i, name in enumerate(crowd.COLUMNS)},
            now=now,
            zone=self.zone,
            purposes=facts.consent_versions,
        )
        begin = self.options.begin
        people: list[Person] = []
        while self.hours_done < self.hours and begin + (self.hours_done + 1) * HOUR <= now:
            start = begin + self.hours_done * HOUR
            people += self.crowd.hour(self.per_hour[self.hours_done], start)
            self.hours_done += 1
        if not people:
            return
        rows: list[SignatureRow] = []
        for line, person in enumerate(people, start=1):
            row = parse([*person.cells(), ""], line)
            assert row is not None
            rows.append(row)
        signatures.record(session, petition=facts, rows=rows, now=now, source="web", enrol=True)
        self.online += len(rows)
        earlier = [
            self.crowd.earlier_gift(p, begin)
            for p in people
            if self.rng.random() < self.options.donor_share
        ]
        self.reactions.last_gift.update((g.email, g.amount_cents) for g in earlier)
        record_gifts(
            session,
            earlier,
            secret=self.settings.keys,
            now=now,
            window=self.settings.attribution_window,
        )
        for person in people:
            assert person.email is not None
            self.reactions.signed(person.email, person.signed_at)

    @contextmanager
    def timed(self, what: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[what] += time.perf_counter() - started

    def instants(self) -> list[datetime]:
        """The start, each `GRID_HOURS` of each day in between, and the end."""
        begin, end = self.options.begin, self.options.end
        day = begin.astimezone(self.zone).replace(hour=0, minute=0, second=0, microsecond=0)
        found = {begin, end}
        while day < end:
            found.update(at for hour in GRID_HOURS if begin < (at := day.replace(hour=hour)) < end)
            day += timedelta(days=1)
        return sorted(found)

    def play(self, progress: Progress) -> None:
        """Record what is due at each instant, run the journey pass, send what is due."""
        sheets = list(self.sheets)
        shown = self.options.begin
        progress.phase("Six weeks of the campaign", self.hours)
        for now in self.instants():
            while sheets and sheets[0].imported_at <= now:
                with self.timed("paper imports"):
                    self.paper += _import_paper(
                        self.sessions, sheets.pop(0), self.slug, self.zone, self.settings.keys
                    )
            with self.sessions.begin() as session:
                with self.timed("signatures"):
                    self._sign(session, now)
                with self.timed("reactions"):
                    self.reactions.record_due(session, now)
                with self.timed("journey passes"):
                    # A step after an email moves at the next instant, once its email is sent.
                    passes.tick(session, now=now, segments=self.named)
                with self.timed("sending"):
                    sent = virtual.mark_sent(session, now=now, versions=self.versions)
                self.reactions.schedule(sent)
            self.passes += 1
            progress.advance((now - shown) / HOUR)
            shown = now
