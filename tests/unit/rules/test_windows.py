"""Quiet hours and send windows in the campaign's zone, on both sides of DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from engine.rules.journeys import Hours, SendWindow
from engine.rules.windows import next_allowed

QUIET = Hours(start=time(21), end=time(8))
WEEKDAYS = SendWindow(start=time(9), end=time(20), days=["mon", "tue", "wed", "thu", "fri"])


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Winter (UTC+1): 22:00 Paris -> 08:00 Paris next morning.
        ("2026-01-14T21:00:00+00:00", "2026-01-15T07:00:00+00:00"),
        # Summer (UTC+2): same wall clock, one hour earlier in UTC.
        ("2026-07-14T20:00:00+00:00", "2026-07-15T06:00:00+00:00"),
        # Spring forward night (29 March 2026): 23:30 CET -> 08:00 CEST.
        ("2026-03-28T22:30:00+00:00", "2026-03-29T06:00:00+00:00"),
        # Fall back night (25 October 2026): 23:30 CEST -> 08:00 CET.
        ("2026-10-24T21:30:00+00:00", "2026-10-25T07:00:00+00:00"),
        # Inside the allowed hours: unchanged.
        ("2026-01-14T10:00:00+00:00", "2026-01-14T10:00:00+00:00"),
    ],
)
def test_quiet_hours_defer_to_the_local_morning(now: str, expected: str) -> None:
    found = next_allowed(datetime.fromisoformat(now), zone="Europe/Paris", quiet=QUIET, window=None)

    assert found == datetime.fromisoformat(expected)
    assert found.tzinfo == UTC


def test_a_weekday_window_moves_friday_evening_to_monday_morning() -> None:
    friday_evening = datetime(2026, 5, 15, 19, 0, tzinfo=UTC)  # 21:00 Paris

    found = next_allowed(friday_evening, zone="Europe/Paris", quiet=QUIET, window=WEEKDAYS)

    assert found == datetime(2026, 5, 18, 7, 0, tzinfo=UTC)  # Monday 09:00 Paris
