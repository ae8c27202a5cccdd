"""`mobilise demo`: a living campaign in an empty database, made by the real engine in virtual
time.

Six weeks of the shipped campaign, ending now: `sync` of the declared files, then an A/B
test on the first-gift ask (a second version of the journey, as a manager would sync it
before launch); signatures arriving on the curve of a petition the press picks up
(`crowd`), some on paper, imported each Monday through the CSV import; the journey pass at
every instant something is due; the emails due marked sent (`virtual.mark_sent`: the
dispatch without a transport, so that 300,000 emails need no SMTP server, SendGrid account
or 300,000 `.eml` files, and with the version each would be rendered from, so that their
links resolve); what readers do with them (`reactions`). That timeline is
engine.simulation.timeline; this module sets the campaign up, plays it and sums it up. A
petition smaller than the journey's milestone starts with signatures gathered before (as
the campaign bench does), so that the milestone is crossed about two thirds into the six
weeks whatever the size.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from engine.config import Settings
from engine.errors import Invalid
from engine.intake import campaign_sync
from engine.progress import QUIET, Progress
from engine.render.library import TemplateLibrary
from engine.rules.campaigns import CampaignDef
from engine.rules.conditions import Condition
from engine.rules.journeys import Journey, SendStep
from engine.simulation.reactions import Links, Reactions
from engine.simulation.run import awaited
from engine.simulation.timeline import DAYS, Options, Timeline
from engine.store import contents, counts, links, petitions, virtual
from engine.store.counts import StepRow
from engine.store.petitions import MilestoneRead

JOURNEY = "stop-reconnaissance-faciale"
# The A/B test the demo adds when the journey has none: the first-gift ask, long or short.
ASK, SHORT = "ask-first", "ask-first-short"


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
        secret=settings.keys,
        burst=settings.automated_click_window,
        window=settings.attribution_window,
        block_for=settings.block_suppression,
    )
    run = Timeline(
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
        # Gathered before the six weeks: the milestones they cross are reached before them.
        before = begin - timedelta(days=1)
        virtual.raise_count(session, petition_id=petition.id, to=already, now=before)
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
