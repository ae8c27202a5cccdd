"""Monthly donors are donors: their last gift is their monthly amount, everywhere.

Given the seed campaign and a supporter who gives 20 € a month, when the journey reaches the
donation ask, then they take the donor branch and the email they receive offers an
exceptional gift sized from 20 € (20 / 30 / 40 €, with the cost after the 66 % tax
reduction), while one-off donors keep their own ladder and wording. The `last_gift`
conditions in SQL, their pure twin and the dispatcher's facts name the same gift.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.rules.conditions import last_gift
from engine.rules.segments import SegmentDef
from engine.send.transport import MemoryTransport, OutgoingMessage
from engine.store import donations, milestones, recipients, segments
from engine.store.donations import DonationRow
from engine.store.models import Supporter
from engine.store.passes import tick
from tests.store.dispatch_helpers import run
from tests.store.journey_helpers import outbox_of, seed, sign, supporter_id
from tests.store.supporter_facts import facts_for, sql_and_python_disagree

SIGNED = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)  # a Wednesday, 11:30 in Paris
MILESTONE = datetime(2026, 5, 20, 10, 0, tzinfo=UTC)
ASK = MILESTONE + timedelta(days=3)  # the seed journey's pause after the update
NBSP = "\u00a0"


def gift(
    name: str, euros: int, days_before: int, frequency: Literal["one-off", "monthly"], key: str
) -> DonationRow:
    at = SIGNED - timedelta(days=days_before)
    return DonationRow(f"{name}@example.org", euros * 100, "EUR", at, frequency, key)


def ask_sent_to(transport: MemoryTransport, name: str) -> OutgoingMessage:
    (message,) = [
        m
        for m in transport.sent
        if m.to.email == f"{name}@example.org" and m.custom_args["mobilise_step"].startswith("ask")
    ]
    return message


def test_a_monthly_donor_gets_the_donor_ask_sized_from_the_monthly_gift(session: Session) -> None:
    # Given Mona, who gives 20 € every month, and Olga, who once gave 30 €
    declared, petition_id = seed(session, SIGNED - timedelta(days=1))
    named = declared.conditions
    sign(session, petition_id, SIGNED, {"mona": (True, True), "olga": (True, True)})
    donations.record(
        session,
        [
            gift("mona", 20, 65, "monthly", "mona-1"),
            gift("mona", 20, 35, "monthly", "mona-2"),
            gift("mona", 20, 5, "monthly", "mona-3"),
            gift("olga", 30, 90, "one-off", "olga-1"),
        ],
        now=SIGNED,
    )
    transport = MemoryTransport()

    # When the journey runs to the ask, each pass followed by a dispatch pass
    tick(session, now=SIGNED, segments=named)
    run(session, transport, SIGNED)
    milestones.check(session, petition_id=petition_id, count=140000, now=MILESTONE)
    for now in (MILESTONE, ASK):
        tick(session, now=now, segments=named)
        run(session, transport, now)

    # Then Mona took the donor branch
    assert outbox_of(session, "mona")[-1] == ("ask-additional", "sent", None)
    # And her email speaks of her monthly gift and asks for an exceptional one from 20 €
    mona = ask_sent_to(transport, "mona").text
    assert f"Vous soutenez Vigie Libertés chaque mois par un don de 20,00{NBSP}€." in mona
    assert "En plus de votre don mensuel, accepteriez-vous de faire un don exceptionnel ?" in mona
    assert f"un don de 20{NBSP}€ ne vous revient qu'à 6,80{NBSP}€" in mona
    assert f"Je donne 20{NBSP}€" in mona
    assert f"Je donne 30{NBSP}€ (soit 10,20{NBSP}€ après impôt)" in mona
    assert f"Je donne 40{NBSP}€ (soit 13,60{NBSP}€ après impôt)" in mona
    assert f"15{NBSP}€" not in mona
    assert f"50{NBSP}€" not in mona
    # And Olga, a one-off donor, is asked as before, from her 30 €
    assert outbox_of(session, "olga")[-1] == ("ask-additional", "sent", None)
    olga = ask_sent_to(transport, "olga").text
    assert f"Vous avez déjà soutenu Vigie Libertés par un don de 30,00{NBSP}€." in olga
    assert "Accepteriez-vous de renouveler votre soutien ?" in olga
    assert f"un don de 30{NBSP}€ ne vous revient qu'à 10,20{NBSP}€" in olga
    assert f"Je donne 45{NBSP}€ (soit 15,30{NBSP}€ après impôt)" in olga
    assert f"Je donne 60{NBSP}€ (soit 20,40{NBSP}€ après impôt)" in olga
    assert "mensuel" not in olga


CONDITIONS = {
    "donor": {"donor": True},
    "monthly": {"monthly_donor": True},
    "last-at-most-20": {"last_gift": {"max": 20}},
    "last-from-50": {"last_gift": {"min": 50}},
    "monthly-and-small": {"all": [{"monthly_donor": True}, {"last_gift": {"max": 20}}]},
}
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
NAMES = ("mona", "olga", "pat", "quinn", "rita", "sam")


def test_sql_python_and_the_dispatchers_facts_name_the_same_last_gift(session: Session) -> None:
    # Given monthly and one-off gifts in every order, including two on the same instant
    # (exports that carry dates only), and a monthly payment not yet made at NOW
    declared, petition_id = seed(session, SIGNED - timedelta(days=1))
    sign(
        session,
        petition_id,
        SIGNED,
        {name: (True, True) for name in NAMES},
    )
    same_day = SIGNED - timedelta(days=3)
    donations.record(
        session,
        [
            # Mona: monthly only
            gift("mona", 20, 40, "monthly", "m1"),
            gift("mona", 20, 10, "monthly", "m2"),
            # Olga: monthly 10 €, then a one-off 100 € after it
            gift("olga", 10, 40, "monthly", "o1"),
            gift("olga", 100, 2, "one-off", "o2"),
            # Pat: a one-off 100 €, then monthly 15 € after it
            gift("pat", 100, 40, "one-off", "p1"),
            gift("pat", 15, 2, "monthly", "p2"),
            # Quinn: a one-off 100 € and a monthly 20 € on the same instant, recorded in that
            # order: the last recorded is the last gift
            DonationRow("quinn@example.org", 10000, "EUR", same_day, "one-off", "q1"),
            DonationRow("quinn@example.org", 2000, "EUR", same_day, "monthly", "q2"),
            # Rita: a one-off 60 €, her first monthly payment due after NOW
            gift("rita", 60, 40, "one-off", "r1"),
            DonationRow("rita@example.org", 500, "EUR", NOW + timedelta(days=1), "monthly", "r2"),
        ],
        now=SIGNED,
    )
    named = dict(declared.conditions)
    for name, where in CONDITIONS.items():
        named[name] = SegmentDef.model_validate({"segment": name, "where": where}).where
    people = session.scalars(select(Supporter.id).order_by(Supporter.id)).all()

    # When each condition is evaluated in SQL and in Python, then they agree
    assert sql_and_python_disagree(session, named, people, now=NOW) == {}

    # And the dispatcher's facts name the same last gift as the pure rule
    loaded = recipients.load(
        session, people, purposes=(), version_ids=(), recent_since=None, now=NOW
    )
    for sid in people:
        pure = last_gift(facts_for(session, sid, now=NOW), NOW)
        expected = pure and recipients.LastGift(Decimal(pure.amount_cents) / 100, pure.monthly)
        assert loaded.last_gift.get(sid) == expected, sid
    by_name = {name: loaded.last_gift.get(supporter_id(session, name)) for name in NAMES}
    assert {n: (int(g.amount), g.monthly) if g else None for n, g in by_name.items()} == {
        "mona": (20, True),
        "olga": (100, False),
        "pat": (15, True),
        "quinn": (20, True),
        "rita": (60, False),
        "sam": None,
    }
    assert segments.size(session, named["monthly-and-small"], now=NOW, segments=named) == 3
