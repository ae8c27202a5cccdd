"""Recording gifts on SQLite and PostgreSQL: unknown givers kept, attribution to the email
that led to the gift, refunds and cancelled monthly gifts as the donor rules see them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.rules.conditions import holds, last_gift
from engine.rules.segments import SegmentDef
from engine.store import clicks, donations, petitions, recipients, segments
from engine.store.donations import DonationRow, Recorded
from engine.store.models import Consent, Donation, OutboxMessage, Supporter
from tests.factories import petition_def, sent_email
from tests.store.journey_helpers import sign, supporter_id
from tests.store.supporter_facts import facts_for

T0 = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)
GIFT = datetime(2026, 5, 25, 18, 0, tzinfo=UTC)


def petition(session: Session, *names: str) -> None:
    petition_id = petitions.upsert(session, petition_def(), now=T0).id
    sign(session, petition_id, T0, {name: (True, True) for name in names})


def sent(session: Session, name: str, step: str) -> int:
    """An email sent to `name` at T0 + 1 day."""
    return sent_email(session, supporter_id(session, name), step, T0 + timedelta(days=1))


def click(session: Session, message_id: int, at: datetime, position: int = 0) -> None:
    supporter = session.scalar(
        select(OutboxMessage.supporter_id).where(OutboxMessage.id == message_id)
    )
    clicks.record(session, message_id=message_id, position=position, supporter_id=supporter, now=at)


def gift(
    name: str,
    key: str,
    *,
    at: datetime = GIFT,
    euros: int = 30,
    message_id: int | None = None,
    frequency: Literal["one-off", "monthly"] = "one-off",
) -> DonationRow:
    return DonationRow(f"{name}@example.org", euros * 100, "EUR", at, frequency, key, message_id)


def attribution(session: Session, key: str) -> tuple[int | None, str | None]:
    return donations.attribution(session, key)


def test_a_gift_from_an_unknown_address_is_kept_and_its_giver_has_no_consent(
    session: Session,
) -> None:
    # Given Anne, who signed, and nobody called Nina
    petition(session, "anne")
    # When both give (Nina twice: one-off, then her first monthly payment)
    done = donations.record(
        session,
        [
            gift("anne", "a1"),
            gift("nina", "n1"),
            gift("nina", "n2", frequency="monthly", at=GIFT + timedelta(days=1)),
        ],
        now=GIFT,
    )
    # Then every gift is kept, and Nina is a new supporter, once, without any consent
    assert done == Recorded(imported=3, new_supporters=1)
    nina = supporter_id(session, "nina")
    assert session.scalar(select(func.count()).where(Donation.supporter_id == nina)) == 2
    assert session.scalar(select(func.count()).where(Consent.supporter_id == nina)) == 0
    # And a replay (the same external ids) changes nothing
    again = donations.record(session, [gift("anne", "a1"), gift("nina", "n1")], now=GIFT)
    assert again == Recorded(duplicates=2)


def test_a_gift_goes_to_its_reference_else_to_the_last_human_click_within_the_window(
    session: Session,
) -> None:
    petition(session, "anne", "bea", "cleo", "dora", "eve")
    # Anne clicked the update 3 days before giving, and a scanner opened her ask the day
    # before (two links within seconds): her gift goes to the update, by last click
    anne_update, anne_ask = sent(session, "anne", "update"), sent(session, "anne", "ask")
    click(session, anne_update, GIFT - timedelta(days=3))
    click(session, anne_ask, GIFT - timedelta(days=1), position=1)
    click(session, anne_ask, GIFT - timedelta(days=1, seconds=-2), position=2)
    # Bea gave through her ask's button (its reference), after clicking the update
    bea_update, bea_ask = sent(session, "bea", "update"), sent(session, "bea", "ask")
    click(session, bea_update, GIFT - timedelta(hours=1))
    # Cleo clicked 8 days before giving, and again after: neither within the window
    cleo_update = sent(session, "cleo", "update")
    click(session, cleo_update, GIFT - timedelta(days=8))
    click(session, cleo_update, GIFT + timedelta(hours=1))
    # Dora's reference names a message this database does not have; she clicked 2 days before
    dora_update = sent(session, "dora", "update")
    click(session, dora_update, GIFT - timedelta(days=2))
    # Eve never clicked

    done = donations.record(
        session,
        [
            gift("anne", "a"),
            gift("bea", "b", message_id=bea_ask),
            gift("cleo", "c"),
            gift("dora", "d", message_id=999_999_999),
            gift("eve", "e"),
        ],
        now=GIFT,
    )

    assert (done.imported, done.by_reference, done.by_last_click) == (5, 1, 2)
    assert attribution(session, "a") == (anne_update, "last_click")
    assert attribution(session, "b") == (bea_ask, "reference")
    assert attribution(session, "c") == (None, None)
    assert attribution(session, "d") == (dora_update, "last_click")
    assert attribution(session, "e") == (None, None)
    # Unattributed gifts count in totals all the same
    assert session.scalar(select(func.sum(Donation.amount_cents))) == 5 * 3000


def test_the_attribution_window_is_a_setting(session: Session) -> None:
    petition(session, "cleo")
    update = sent(session, "cleo", "update")
    click(session, update, GIFT - timedelta(days=8))

    donations.record(session, [gift("cleo", "c")], now=GIFT, window=timedelta(days=10))

    assert attribution(session, "c") == (update, "last_click")


CONDITIONS = {
    "donor": {"donor": True},
    "monthly": {"monthly_donor": True},
    "last-from-50": {"last_gift": {"min": 50}},
}
NAMES = ("rafa", "remy", "mona", "nils")
BEFORE_REFUND = GIFT + timedelta(days=1)
NOW = GIFT + timedelta(days=5)


def test_a_refunded_gift_stops_counting_and_a_cancelled_monthly_gift_stops_making_a_monthly_donor(
    session: Session,
) -> None:
    # Given Rafa, who gave 20 € then 100 €, the 100 € refunded two days later; Rémy, whose
    # only gift was refunded; Mona, who gave 15 € a month, then cancelled; Nils, monthly
    petition(session, *NAMES)
    donations.record(
        session,
        [
            gift("rafa", "r1", euros=20, at=GIFT - timedelta(days=30)),
            gift("rafa", "r2", euros=100),
            gift("remy", "x1", euros=60),
            gift("mona", "m1", euros=15, frequency="monthly", at=GIFT - timedelta(days=30)),
            gift("mona", "m2", euros=15, frequency="monthly"),
            gift("nils", "n1", euros=10, frequency="monthly"),
        ],
        now=GIFT,
    )
    assert donations.refund(session, external_id="r2", at=GIFT + timedelta(days=2)) == "done"
    assert donations.refund(session, external_id="x1", at=GIFT + timedelta(days=2)) == "done"
    assert donations.refund(session, external_id="x1", at=NOW) == "already"
    assert donations.refund(session, external_id="nope", at=NOW) == "unknown"
    at = GIFT + timedelta(days=3)
    assert donations.cancel_monthly(session, email="mona@example.org", at=at) == "done"
    assert donations.cancel_monthly(session, email="mona@example.org", at=at) == "already"
    assert donations.cancel_monthly(session, email="rafa@example.org", at=at) == "unknown"
    named = {
        name: SegmentDef.model_validate({"segment": name, "where": where}).where
        for name, where in CONDITIONS.items()
    }
    people = [supporter_id(session, name) for name in NAMES]

    def members(now: datetime) -> dict[str, set[str]]:
        facts = {sid: facts_for(session, sid, now=now) for sid in people}
        found: dict[str, set[str]] = {}
        for name, condition in named.items():
            ctx = segments.Context(supporter_id=Supporter.id, now=now, segments=named)
            in_sql = set(
                session.scalars(
                    select(Supporter.id).where(
                        Supporter.id.in_(people), segments.where(condition, ctx)
                    )
                )
            )
            in_python = {s for s in people if holds(condition, facts[s], now=now, segments=named)}
            # SQL and the pure rules agree
            assert in_sql == in_python, (name, now)
            found[name] = {NAMES[people.index(s)] for s in in_sql}
        return found

    def last_gifts(now: datetime) -> dict[str, tuple[int, bool] | None]:
        loaded = recipients.load(
            session, people, purposes=(), version_ids=(), recent_since=None, now=now
        )
        found: dict[str, tuple[int, bool] | None] = {}
        for name, sid in zip(NAMES, people, strict=True):
            pure = last_gift(facts_for(session, sid, now=now), now)
            expected = pure and recipients.LastGift(
                Decimal(pure.amount_cents) / 100, pure.monthly_in_force(now)
            )
            # The dispatcher's facts (template amounts) name the pure rule's last gift
            assert loaded.last_gift.get(sid) == expected, (name, now)
            gift_ = loaded.last_gift.get(sid)
            found[name] = (int(gift_.amount), gift_.monthly) if gift_ else None
        return found

    # Before the refunds and the cancellation, every gift counts
    assert members(BEFORE_REFUND) == {
        "donor": {"rafa", "remy", "mona", "nils"},
        "monthly": {"mona", "nils"},
        "last-from-50": {"rafa", "remy"},
    }
    assert last_gifts(BEFORE_REFUND)["rafa"] == (100, False)
    # After: Rafa's last gift is his 20 €, Rémy is no donor, Mona no monthly donor
    assert members(NOW) == {
        "donor": {"rafa", "mona", "nils"},
        "monthly": {"nils"},
        "last-from-50": set(),
    }
    assert last_gifts(NOW) == {
        "rafa": (20, False),
        "remy": None,
        "mona": (15, False),
        "nils": (10, True),
    }


def test_ending_one_of_two_monthly_gifts_by_its_subscription_leaves_the_other_in_force(
    session: Session,
) -> None:
    # Given Sara, who holds two monthly gifts at the platform: 10 € (sub-a) and 25 € (sub-b),
    # two payments each, and whose 25 € payment came last
    petition(session, "sara")
    month = timedelta(days=30)
    donations.record(
        session,
        [
            monthly("sara", "a1", euros=10, at=GIFT - month, subscription="sub-a"),
            monthly("sara", "b1", euros=25, at=GIFT - month, subscription="sub-b"),
            monthly("sara", "a2", euros=10, at=GIFT, subscription="sub-a"),
            monthly("sara", "b2", euros=25, at=GIFT + timedelta(hours=1), subscription="sub-b"),
        ],
        now=NOW,
    )
    at = GIFT + timedelta(days=3)

    # When the platform says sub-a ended
    assert donations.cancel_monthly(session, subscription="sub-a", at=at) == "done"

    # Then sub-a's payments are dated cancelled, sub-b's are not; she is still a monthly
    # donor, and her last gift is a monthly gift in force
    assert cancelled(session) == {"a1": at, "a2": at, "b1": None, "b2": None}
    facts = facts_for(session, supporter_id(session, "sara"), now=NOW)
    monthly_donor = SegmentDef.model_validate({"segment": "m", "where": {"monthly_donor": True}})
    assert holds(monthly_donor.where, facts, now=NOW, segments={})
    found = last_gift(facts, NOW)
    assert found is not None
    assert (found.amount_cents, found.monthly_in_force(NOW)) == (2500, True)
    # A repeat changes nothing; a subscription nobody paid is unknown
    assert donations.cancel_monthly(session, subscription="sub-a", at=NOW) == "already"
    assert donations.cancel_monthly(session, subscription="sub-z", at=NOW) == "unknown"
    # By her address (a platform that names no subscription), both end, sub-a keeping its date
    assert donations.cancel_monthly(session, email="sara@example.org", at=NOW) == "done"
    assert cancelled(session) == {"a1": at, "a2": at, "b1": NOW, "b2": NOW}


def test_a_subscription_ends_its_givers_payments_that_named_none_and_no_one_elses(
    session: Session,
) -> None:
    # Given Theo, whose first payment was recorded before the platform named subscriptions,
    # then two payments of "1001"; and Ugo, at another platform, whose mandate is also "1001"
    petition(session, "theo", "ugo")
    month = timedelta(days=30)
    donations.record(
        session,
        [
            gift("theo", "t0", euros=10, frequency="monthly", at=GIFT - 2 * month),
            monthly("theo", "t1", euros=10, at=GIFT - month, subscription="1001"),
            monthly("theo", "t2", euros=10, at=GIFT, subscription="1001"),
            monthly("ugo", "u1", euros=20, at=GIFT, subscription="1001"),
        ],
        now=NOW,
    )
    at = GIFT + timedelta(days=1)

    # When Theo's "1001" ends (the giver known: a file's row, the API, a webhook with email)
    ended = donations.cancel_monthly(session, subscription="1001", email="theo@example.org", at=at)

    # Then all his payments end, the one that named none too; Ugo's do not
    assert ended == "done"
    assert cancelled(session) == {"t0": at, "t1": at, "t2": at, "u1": None}
    # And named by the subscription alone, its givers' payments end
    assert donations.cancel_monthly(session, subscription="1001", at=NOW) == "done"
    assert cancelled(session)["u1"] == NOW


def test_a_payment_recorded_after_its_monthly_gift_ended_is_ended_with_it(
    session: Session,
) -> None:
    # Given Vera's monthly gift "m-1", ended on day 10 after one payment
    petition(session, "vera")

    def day(n: int) -> datetime:
        return GIFT + timedelta(days=n)

    donations.record(
        session, [monthly("vera", "v1", euros=10, at=day(0), subscription="m-1")], now=NOW
    )
    assert donations.cancel_monthly(session, subscription="m-1", at=day(10)) == "done"

    # When the platform's retries bring a payment of day 5, one that named no subscription
    # of day 3, and a payment of day 15 (made after the end: the gift resumed)
    donations.record(
        session,
        [
            monthly("vera", "v2", euros=10, at=day(5), subscription="m-1"),
            gift("vera", "v3", euros=10, frequency="monthly", at=day(3)),
            monthly("vera", "v4", euros=10, at=day(15), subscription="m-1"),
        ],
        now=NOW + timedelta(days=20),
    )

    # Then the two made before the end are ended with it; the later one is in force
    assert cancelled(session) == {"v1": day(10), "v2": day(10), "v3": day(10), "v4": None}


def cancelled(session: Session) -> dict[str, datetime | None]:
    """Each gift's cancellation date, by external id."""
    return {
        key: at for key, at in session.execute(select(Donation.external_id, Donation.cancelled_at))
    }


def monthly(name: str, key: str, *, euros: int, at: datetime, subscription: str) -> DonationRow:
    return DonationRow(
        f"{name}@example.org", euros * 100, "EUR", at, "monthly", key, None, subscription
    )


def test_a_long_batch_is_recorded_in_chunks_that_add_up(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given chunks of 2 rows (1,000 in production) and five gifts, one a replay
    monkeypatch.setattr(donations, "CHUNK", 2)
    petition(session, "anne")
    donations.record(session, [gift("anne", "k0")], now=GIFT)
    rows = [gift("anne", "k0"), *(gift(f"new{i}", f"k{i}") for i in range(1, 5))]
    # When they are recorded at once, then the counts are those of the whole batch
    assert donations.record(session, rows, now=GIFT) == Recorded(
        imported=4, duplicates=1, new_supporters=4
    )
