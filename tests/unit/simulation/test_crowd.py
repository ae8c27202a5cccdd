"""The demo's made-up people: addresses every door accepts and nobody owns, a signing curve
with a slow start, press peaks and a decay, and paper sheets imported after their weekend."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from engine.rules.supporters import parse_email
from engine.simulation import crowd
from engine.simulation.crowd import Crowd

PARIS = ZoneInfo("Europe/Paris")
BEGIN = datetime(2026, 10, 26, 9, tzinfo=UTC)
END = BEGIN + timedelta(days=42)


def test_addresses_are_valid_unique_and_at_documentation_domains() -> None:
    # Given a crowd of 3,000
    people = Crowd(random.Random(1)).hour(3_000, BEGIN)

    # Then each address is accepted as it is by the one check every door applies, at a
    # domain reserved for documentation, and nobody shares one
    addresses = [p.email for p in people]
    assert all(a is not None and parse_email(a) == a for a in addresses)
    assert {a.rpartition("@")[2] for a in addresses if a} == set(crowd.DOMAINS)
    assert len(set(addresses)) == len(addresses)
    # And they signed within the hour, in order, most consenting to news
    assert all(BEGIN <= p.signed_at < BEGIN + timedelta(hours=1) for p in people)
    assert [p.signed_at for p in people] == sorted(p.signed_at for p in people)
    assert 0.6 < sum(p.updates for p in people) / len(people) < 0.85


def test_the_curve_starts_slowly_peaks_with_the_news_and_fades() -> None:
    # When 150,000 signatures are spread over six weeks
    per_hour = crowd.hourly(150_000, BEGIN, 42 * 24, PARIS)
    per_day = [sum(per_hour[d * 24 : (d + 1) * 24]) for d in range(42)]

    # Then every one of them is somewhere, the day after the television report (13.3 days
    # in) is the busiest, the first day and the last week are quiet, and nights are
    # quieter than evenings
    assert sum(per_hour) == 150_000
    assert max(per_day) == per_day[14]
    assert per_day[0] < per_day[14] / 4
    assert sum(per_day[35:]) < per_day[14]
    evening = (BEGIN.replace(hour=19) - BEGIN) // timedelta(hours=1)  # 20:00 in Paris
    assert per_hour[14 * 24 + evening] > 5 * per_hour[14 * 24 + evening - 16]  # 04:00


def test_paper_sheets_of_each_saturday_are_imported_the_monday_after() -> None:
    # When 900 paper signatures are gathered over the six weeks
    sheets = crowd.paper(Crowd(random.Random(2)), 900, begin=BEGIN, end=END, zone=PARIS)

    # Then they are all there, without an address or consent, signed on Saturday
    # afternoons and imported at noon on the Monday after
    people = [p for s in sheets for p in s.people]
    assert len(people) == 900
    assert len(sheets) == 5
    assert all(p.email is None and not p.updates and not p.fundraising for p in people)
    for sheet in sheets:
        local = sheet.imported_at.astimezone(PARIS)
        assert (local.weekday(), local.hour) == (0, 12)
        assert all(
            p.signed_at.astimezone(PARIS).weekday() == 5
            and timedelta(days=1) < sheet.imported_at - p.signed_at < timedelta(days=3)
            for p in sheet.people
        )
