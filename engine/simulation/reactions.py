"""What people do with the demo's emails, and when: clicks (some by mail scanners), one-click
unsubscribes, deliveries, bounces, blocks and complaints reported by the provider, and gifts
through the emails' donation links.

Each reaction is drawn when its email is sent (`schedule`) and recorded when the virtual
clock reaches it (`record_due`), through the paths the real doors use: clicks as the click
route records them (`clicks.record_many`), unsubscribes as the one-click POST does
(`unsubscribes.confirm`), provider events as the SendGrid webhook stores them
(`provider_events.apply_sendgrid`), gifts as the donations API and webhook do
(`gifts.record_gifts`, the reference read back from the link's token). Deliveries, one per
email that did not bounce, are the exception: marked set-based, without an event row each,
and counted as the webhook's are (`virtual.mark_delivered`). The rates are a campaign's
plausible ones, not measured ones; the short ask is made to do a little better.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from engine.config import Secret
from engine.render import tokens
from engine.render.asks import ask_ladder
from engine.rules.gifts import GiftRow
from engine.store import clicks, supporters, virtual
from engine.store.clicks import ClickIn
from engine.store.virtual import Sent
from engine.track import provider_events, unsubscribes
from engine.track.donations import record_gifts
from engine.track.sendgrid_events import ProviderEvent


@dataclass(frozen=True)
class Habits:
    """Shares of a template's emails that are clicked, that unsubscribe, that lead to a gift."""

    click: float
    unsubscribe: float
    give: float = 0.0


HABITS = {
    "thanked": Habits(click=0.045, unsubscribe=0.001),
    "update": Habits(click=0.07, unsubscribe=0.004),
    "ask-first": Habits(click=0.032, unsubscribe=0.003, give=0.009),
    "ask-first-short": Habits(click=0.045, unsubscribe=0.003, give=0.013),
    "ask-additional": Habits(click=0.06, unsubscribe=0.002, give=0.035),
}
OTHER = Habits(click=0.03, unsubscribe=0.002)
BOUNCE = 0.012  # of first emails to an address: it does not exist
BLOCKED = 0.002  # of first emails: the receiving server refuses for a while
COMPLAINT = 0.0004  # of campaign emails: reported as spam
SCANNED = 0.008  # of emails: a mail gateway opens their links as they arrive
MONTHLY = 0.15  # of gifts: made monthly on the donation page (10, 15 or 20 €)
WITH_REFERENCE = 0.85  # of gifts from a link: the platform hands the reference back
OWN_AMOUNT = 0.2  # of gifts from a link: another amount than the button's
SPONTANEOUS = 0.003  # of signers: give later without an email (attributed by last click)
RUNGS = (0.55, 0.3, 0.15)  # which of an ask's three amounts is clicked


@dataclass(frozen=True)
class Links:
    """A template version's tracked links: how many, and where its donation buttons are."""

    count: int
    donations: tuple[int, ...]


@dataclass(frozen=True)
class Unsubscribe:
    message_id: int


@dataclass(frozen=True)
class Report:
    """A provider event to come, for the supporter an email went to."""

    event: str
    message_id: int
    supporter_id: int
    reason: str
    bounce_type: str | None = None


@dataclass(frozen=True)
class Gift:
    """A gift to come: through email `message_id` (its button `rung`), or from `email`."""

    supporter_id: int | None
    email: str | None
    message_id: int | None
    template: str | None
    rung: int
    monthly: bool
    reference: bool
    own_amount: bool


Reaction = ClickIn | Unsubscribe | Report | Gift


@dataclass
class Reactions:
    rng: random.Random
    links: Mapping[str, Links]
    # an earlier gift's amount in cents, by address: the donors' ask is sized from it
    last_gift: dict[str, int]
    secret: Secret
    burst: timedelta
    window: timedelta
    block_for: timedelta
    tally: Counter[str] = field(default_factory=Counter)
    _queue: list[tuple[datetime, int, Reaction]] = field(default_factory=list)
    _seq: int = 0
    _reached: set[int] = field(default_factory=set)
    # Emails sent and not bounced: the provider reports them delivered within seconds,
    # recorded at the next instant.
    _delivered: list[int] = field(default_factory=list)

    def _at(self, at: datetime, reaction: Reaction) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (at, self._seq, reaction))

    def _later(self, median_hours: float, spread: float = 1.2, most_days: float = 5) -> timedelta:
        """A reader's delay: log-normal around `median_hours`, within `most_days`."""
        hours = min(self.rng.lognormvariate(math.log(median_hours), spread), most_days * 24)
        return timedelta(hours=hours)

    def schedule(self, sent: Sequence[Sent]) -> None:
        """Draw what happens to each email just sent."""
        for email in sent:
            self._one(email)

    def _one(self, email: Sent) -> None:
        rng = self.rng
        first = email.supporter_id not in self._reached
        self._reached.add(email.supporter_id)
        if first:
            draw = rng.random()
            if draw < BOUNCE + BLOCKED:
                blocked = draw >= BOUNCE
                self._at(
                    email.at + timedelta(seconds=rng.uniform(20, 300)),
                    Report(
                        "bounce",
                        email.id,
                        email.supporter_id,
                        "550 5.7.1 blocked by policy" if blocked else "550 5.1.1 no such user",
                        "blocked" if blocked else "bounce",
                    ),
                )
                return
        self._delivered.append(email.id)
        links = self.links.get(email.template, Links(0, ()))
        habits = HABITS.get(email.template, OTHER)
        if links.count and rng.random() < SCANNED:
            self._scanned(email, links)
        if links.count and rng.random() < habits.click:
            self._clicked(email, links, habits)
        if rng.random() < habits.unsubscribe:
            self._at(email.at + self._later(6), Unsubscribe(email.id))
        if email.template != "thanked" and rng.random() < COMPLAINT:
            self._at(
                email.at + self._later(2),
                Report("spamreport", email.id, email.supporter_id, "marked as spam"),
            )

    def _scanned(self, email: Sent, links: Links) -> None:
        """A gateway opens two links within seconds of delivery: flagged automated."""
        at = email.at + timedelta(seconds=self.rng.uniform(1, 4))
        for position in self.rng.sample(range(links.count), min(2, links.count)):
            self._at(at, ClickIn(email.id, position, email.supporter_id, at))
            at += timedelta(seconds=self.rng.uniform(0.5, 2))

    def _clicked(self, email: Sent, links: Links, habits: Habits) -> None:
        rng = self.rng
        at = email.at + self._later(2.5)
        if links.donations and rng.random() < 0.8:
            rung = rng.choices(range(len(links.donations)), RUNGS[: len(links.donations)])[0]
            position = links.donations[rung]
        else:
            rung, position = -1, rng.randrange(links.count)
        self._at(at, ClickIn(email.id, position, email.supporter_id, at))
        if rung >= 0 and rng.random() < habits.give / habits.click:
            self._at(
                at + timedelta(minutes=rng.uniform(2, 20)),
                Gift(
                    email.supporter_id,
                    None,
                    email.id,
                    email.template,
                    rung,
                    monthly=rng.random() < MONTHLY,
                    reference=rng.random() < WITH_REFERENCE,
                    own_amount=rng.random() < OWN_AMOUNT,
                ),
            )
        elif rng.random() < 0.15 and links.count > 1:
            # A second look at another link, a while later.
            again = at + timedelta(minutes=rng.uniform(3, 90))
            other = rng.choice([p for p in range(links.count) if p != position])
            self._at(again, ClickIn(email.id, other, email.supporter_id, again))

    def signed(self, email: str, at: datetime) -> None:
        """A signer who may give later, by another way than an email's button."""
        if self.rng.random() < SPONTANEOUS:
            when = at + timedelta(days=self.rng.uniform(1, 20))
            self._at(when, Gift(None, email, None, None, 0, False, False, own_amount=True))

    def next_at(self) -> datetime | None:
        return self._queue[0][0] if self._queue else None

    def record_due(self, session: Session, now: datetime) -> None:
        """Record every reaction due by `now`: deliveries first, then clicks (a gift is
        attributed to the click before it), then provider events and unsubscribes, then
        gifts."""
        if self._delivered:
            self.tally["delivered"] += virtual.mark_delivered(session, self._delivered)
            self._delivered = []
        due: list[tuple[datetime, Reaction]] = []
        while self._queue and self._queue[0][0] <= now:
            at, _, reaction = heapq.heappop(self._queue)
            due.append((at, reaction))
        if not due:
            return
        clicked = [r for _, r in due if isinstance(r, ClickIn)]
        clicks.record_many(session, clicked, burst=self.burst)
        self.tally["clicks"] += len(clicked)
        reports = [(at, r) for at, r in due if isinstance(r, Report)]
        gifts = [(at, r) for at, r in due if isinstance(r, Gift)]
        addresses = supporters.emails(
            session,
            {r.supporter_id for _, r in reports}
            | {r.supporter_id for _, r in gifts if r.supporter_id is not None},
        )
        self._reports(session, reports, addresses, now)
        for at, reaction in due:
            if isinstance(reaction, Unsubscribe):
                unsubscribes.confirm(session, reaction.message_id, now=at, secret=self.secret)
                self.tally["unsubscribes"] += 1
        self._gifts(session, gifts, addresses, now)

    def _reports(
        self,
        session: Session,
        reports: list[tuple[datetime, Report]],
        addresses: Mapping[int, str],
        now: datetime,
    ) -> None:
        events = []
        for at, report in reports:
            email = addresses.get(report.supporter_id)
            if email is None:
                continue
            self._seq += 1
            events.append(
                ProviderEvent(
                    event=report.event,
                    dedup_key=f"demo-{self._seq}",
                    occurred_at=at,
                    email=email,
                    sg_event_id=f"demo-{self._seq}",
                    mobilise_message_id=str(report.message_id),
                    reason=report.reason,
                    bounce_type=report.bounce_type,
                )
            )
            self.tally[report.bounce_type or report.event] += 1
        provider_events.apply_sendgrid(
            session, events, now=now, block_for=self.block_for, secret=self.secret
        )

    def _gifts(
        self,
        session: Session,
        gifts: list[tuple[datetime, Gift]],
        addresses: Mapping[int, str],
        now: datetime,
    ) -> None:
        rows = []
        for at, gift in gifts:
            email = gift.email or addresses.get(gift.supporter_id or -1)
            if email is None:
                continue
            cents = self._amount(gift, email)
            self._seq += 1
            rows.append(
                GiftRow(
                    line=self._seq,
                    email=email,
                    amount_cents=cents,
                    currency="EUR",
                    donated_at=at,
                    frequency="monthly" if gift.monthly else "one-off",
                    external_id=f"demo-gift-{self._seq}",
                    reference=tokens.reference_token(self.secret, gift.message_id)
                    if gift.reference and gift.message_id is not None
                    else None,
                )
            )
            self.tally["monthly gifts" if gift.monthly else "one-off gifts"] += 1
            self.tally["monthly cents" if gift.monthly else "one-off cents"] += cents
        record_gifts(session, rows, secret=self.secret, now=now, window=self.window)

    def _amount(self, gift: Gift, email: str) -> int:
        if gift.monthly:
            return self.rng.choice((1000, 1500, 2000))
        if gift.own_amount:
            return self.rng.choice((1000, 2000, 2500, 4000, 7500, 25000))
        last = self.last_gift.get(email) if gift.template == "ask-additional" else None
        ladder = ask_ladder(Decimal(last) / 100 if last else None)
        return int(ladder[gift.rung] * 100)
