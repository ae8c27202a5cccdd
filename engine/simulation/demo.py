"""`mobilise demo`: a living campaign in an empty database, made by the real engine in virtual
time.

Six weeks of the shipped campaign, ending now: `sync` of the declared files, then an A/B
test on the first-gift ask (a second version of the journey, as a manager would sync it
before launch); signatures arriving on the curve of a petition the press picks up
(`crowd`), some on paper, imported each Monday through the CSV import; the journey pass at
every instant something is due; the emails due marked sent (`virtual.mark_sent`: the
dispatch without a transport, so that 300,000 emails need no SMTP server, SendGrid account
or 300,000 `.eml` files, and with the version each would be rendered from, so that their
links resolve); what readers do with them (`reactions`). A petition smaller than the
journey's milestone starts with signatures gathered before (as the campaign bench does),
so that the milestone is crossed about two thirds into the six weeks whatever the size.
"""

from __future__ import annotations

import csv
import random
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from engine.config import Settings
from engine.errors import Invalid
from engine.intake import campaign_sync
from engine.intake.signature_imports import import_signatures
from engine.progress import QUIET, Progress
from engine.render.library import TemplateLibrary
from engine.rules.campaigns import CampaignDef
from engine.rules.conditions import Condition
from engine.rules.journeys import Journey, SendStep
from engine.rules.signature_rows import SignatureRow, signer_parser
from engine.simulation import crowd
from engine.simulation.crowd import Crowd, Person, Sheets
from engine.simulation.reactions import Links, Reactions
from engine.simulation.run import HOUR, awaited
from engine.store import (
    contents,
    counts,
    links,
    passes,
    petitions,
    signatures,
    virtual,
)
from engine.store.counts import StepRow
from engine.store.petitions import MilestoneRead
from engine.track.donations import record_gifts

JOURNEY = "stop-reconnaissance-faciale"
# The A/B test the demo adds when the journey has none: the first-gift ask, long or short.
ASK, SHORT = "ask-first", "ask-first-short"
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


@dataclass
class Summary:
    begin: datetime
    end: datetime
    petition: str
    zone: str
    started_at: int  # the petition's count when the six weeks begin
    count: int
    online: int
    paper: int
    milestones: list[MilestoneRead]
    steps: list[StepRow]  # the journey's summary rows: emails, clicks, gifts
    tally: Mapping[str, int]
    passes: int  # the instants visited: a journey pass and a dispatch each
    seconds: Mapping[str, float]  # where the time went
    ab: tuple[str, ...] = ()  # the variants of the journey's A/B test


def ab_test(campaign: CampaignDef) -> tuple[CampaignDef, tuple[str, ...]]:
    """The campaign with the demo journey's first-gift ask split in two variants (`long`:
    the shipped template, `short`), and the variants the journey tests; a journey that
    tests variants already is left as it is."""
    raws: list[dict[str, Any]] = []
    names: tuple[str, ...] = ()
    for raw in campaign.journeys:
        journey = Journey.model_validate(raw)
        if journey.id == JOURNEY:
            raw, names = _split_ask(raw, journey)
        raws.append(raw)
    return campaign.model_copy(update={"journeys": raws}), names


def _split_ask(raw: dict[str, Any], journey: Journey) -> tuple[dict[str, Any], tuple[str, ...]]:
    tested = [s for s in journey.steps if isinstance(s, SendStep) and s.send.variants]
    if tested:
        return raw, tuple(v.name for v in tested[0].send.variants)
    variants = [{"name": "long", "template": ASK}, {"name": "short", "template": SHORT}]
    steps = []
    for step in raw.get("steps", []):
        send = step.get("send")
        if isinstance(send, dict) and send.get("template") == ASK:
            send = {k: v for k, v in send.items() if k != "template"} | {"variants": variants}
            step = {**step, "send": send}
        steps.append(step)
    split = {**raw, "steps": steps}
    return split, ("long", "short") if split != raw else ()


def demo_campaign(campaigns: list[CampaignDef]) -> CampaignDef:
    for campaign in campaigns:
        if any(raw.get("id") == JOURNEY for raw in campaign.journeys):
            return campaign
    raise Invalid(
        f"the demo plays the shipped journey '{JOURNEY}', which the declared files lack",
        field="journeys",
        hint="run it on the project's own journeys/ (git checkout journeys/ segments/)",
    )


def refuse_filled(session: Session, *, force: bool, where: str) -> None:
    """Invalid unless the database holds no campaign (or `force`: then it is emptied)."""
    found = contents.held(session)
    if found.empty:
        return
    if not force:
        raise Invalid(
            f"the database {where} already holds {found}: the demo fills an empty one",
            field="MOBILISE_DATABASE_URL",
            hint="point MOBILISE_DATABASE_URL at another database, or add --force to empty it "
            "first; API keys and the audit log stay",
        )
    contents.clear(session)


def _versions(
    library: TemplateLibrary, session: Session
) -> tuple[dict[str, str], dict[str, Links]]:
    """Each template's current version and links, the links stored as a send stores them."""
    versions, found = {}, {}
    for name in library.names():
        compiled = library.get(name)
        links.remember(session, name, compiled.version, compiled.links)
        versions[name] = compiled.version
        found[name] = Links(len(compiled.links), compiled.donation_positions)
    return versions, found


def _import_paper(
    sessions: sessionmaker[Session], sheets: Sheets, slug: str, zone: ZoneInfo, secret: str
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


class Campaign:
    """The run: its people, its clock, and what it has recorded."""

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
            secret=self.settings.secret_key,
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
                        self.sessions, sheets.pop(0), self.slug, self.zone, self.settings.secret_key
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


def fill(
    sessions: sessionmaker[Session],
    settings: Settings,
    campaigns: list[CampaignDef],
    named: Mapping[str, Condition],
    options: Options,
    *,
    force: bool = False,
    where: str = "",
    progress: Progress = QUIET,
) -> Summary:
    """Fill the database with the demo campaign; Invalid if it holds one already."""
    campaign = demo_campaign(campaigns)
    tested, variants = ab_test(campaign)
    library = TemplateLibrary(settings.project_dir / "templates" / "email")
    zone = ZoneInfo(campaign.timezone)
    begin = options.begin
    with sessions.begin() as session:
        refuse_filled(session, force=force, where=where)
        progress.phase("Preparing", 3)
        progress.advance(1)
        # What `mobilise sync` stores, then the journey with its A/B test, as a manager
        # would sync it the day before launch.
        campaign_sync.store(session, campaigns, now=begin - timedelta(days=2))
        campaign_sync.store(session, [tested], now=begin - timedelta(days=1))
        versions, found_links = _versions(library, session)
        progress.advance(1)
    reactions = Reactions(
        rng=random.Random(options.seed),
        links=found_links,
        last_gift={},
        secret=settings.secret_key,
        burst=settings.automated_click_window,
        window=settings.attribution_window,
        block_for=settings.block_suppression,
    )
    run = Campaign(
        sessions,
        settings,
        options,
        slug=campaign.petition.slug,
        zone=zone,
        named=named,
        reactions=reactions,
        versions=versions,
    )
    journey = next(
        j for j in (Journey.model_validate(r) for r in tested.journeys) if j.id == JOURNEY
    )
    thresholds = [t for _, t in awaited(journey, campaign.petition.slug)]
    already = 0
    if thresholds:
        # The milestone about two thirds into the six weeks, whatever the size.
        crossing = begin + timedelta(days=DAYS * 0.62)
        already = max(0, max(thresholds) - run.before(crossing))
    with sessions.begin() as session:
        petition = petitions.facts(session, campaign.petition.slug)
        virtual.raise_count(session, petition_id=petition.id, to=already, now=begin)
    progress.advance(1)
    run.play(progress)
    with sessions.begin() as session:
        read = petitions.read(session, campaign.petition.slug)
        steps = counts.read(session, JOURNEY)
    return Summary(
        begin=begin,
        end=options.end,
        petition=read.slug,
        zone=campaign.timezone,
        started_at=already,
        count=read.count,
        online=run.online,
        paper=run.paper,
        milestones=read.milestones,
        steps=steps,
        tally=dict(reactions.tally),
        passes=run.passes,
        seconds=dict(run.seconds),
        ab=variants,
    )
