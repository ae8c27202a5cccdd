"""The last gift, as the planner sees it: one-off or monthly, whichever came last.

Given a supporter's gifts in the order they were recorded, when the last gift at an
instant is asked for, then it is the latest one given by then, of either kind, and on a
tie the last recorded (the order engine.store.donations.latest uses in SQL).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.rules.conditions import Facts, Gift, LastGift, last_gift
from engine.rules.conditions import holds as holds_at

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def test_a_monthly_payment_is_a_last_gift() -> None:
    facts = Facts(gifts=(Gift(2000, NOW - 40 * DAY, monthly=True), Gift(2000, NOW - 9 * DAY, True)))

    assert last_gift(facts, NOW) == Gift(2000, NOW - 9 * DAY, monthly=True)
    condition = LastGift.model_validate({"last_gift": {"min": 20, "max": 20}})
    assert holds_at(condition, facts, now=NOW, segments={})


def test_the_latest_gift_of_either_kind_wins_and_the_future_does_not_count() -> None:
    monthly = Gift(1500, NOW - 2 * DAY, monthly=True)
    facts = Facts(gifts=(Gift(10000, NOW - 30 * DAY), monthly, Gift(5000, NOW + DAY)))

    assert last_gift(facts, NOW) == monthly
    assert last_gift(facts, NOW - 10 * DAY) == Gift(10000, NOW - 30 * DAY)
    assert last_gift(Facts(), NOW) is None


def test_on_the_same_instant_the_last_recorded_gift_wins() -> None:
    one_off, monthly = Gift(10000, NOW - DAY), Gift(2000, NOW - DAY, monthly=True)

    assert last_gift(Facts(gifts=(one_off, monthly)), NOW) == monthly
    assert last_gift(Facts(gifts=(monthly, one_off)), NOW) == one_off
