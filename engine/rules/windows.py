"""When a campaign email may leave: quiet hours and send windows in the campaign's zone.

Computed on local wall-clock time with zoneinfo, so that "not before 09:00" stays 09:00 in
Paris on both sides of a DST change. Transactional emails ignore both.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from engine.rules.journeys import DAYS, Hours, Journey, SendWindow

# A window with at least one allowed day always opens within a week; one more day is slack.
_HORIZON_DAYS = 8


def _inside(hours: Hours, moment: time) -> bool:
    if hours.start < hours.end:
        return hours.start <= moment < hours.end
    return moment >= hours.start or moment < hours.end


def allowed(local: datetime, quiet: Hours | None, window: SendWindow | None) -> bool:
    """Is this local instant outside quiet hours and inside the send window?"""
    moment = local.time().replace(tzinfo=None)
    if quiet is not None and _inside(quiet, moment):
        return False
    if window is None:
        return True
    if not _inside(window, moment):
        return False
    # A window wrapping past midnight belongs to the day it opened on.
    day = local.date()
    if window.start > window.end and moment < window.end:
        day -= timedelta(days=1)
    return DAYS[day.weekday()] in window.days


def _boundaries(day: date, quiet: Hours | None, window: SendWindow | None) -> list[time]:
    found = [time(0)]
    for hours in (quiet, window):
        if hours is not None:
            found += [hours.start, hours.end]
    return sorted(set(found))


def _at(day: date, moment: time, zone: ZoneInfo) -> datetime:
    # A wall-clock time inside a spring-forward gap does not exist; round-tripping through
    # UTC lands on the first real instant after it.
    return datetime.combine(day, moment, tzinfo=zone).astimezone(UTC).astimezone(zone)


def next_allowed(
    now: datetime, *, zone: str, quiet: Hours | None, window: SendWindow | None
) -> datetime:
    """The first instant at or after `now` (aware, UTC out) when a campaign email may leave."""
    if quiet is None and window is None:
        return now.astimezone(UTC)
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    if allowed(local, quiet, window):
        return now.astimezone(UTC)
    for offset in range(_HORIZON_DAYS):
        day = local.date() + timedelta(days=offset)
        for moment in _boundaries(day, quiet, window):
            candidate = _at(day, moment, tz)
            if candidate > local and allowed(candidate, quiet, window):
                return candidate.astimezone(UTC)
    raise ValueError("the send window never opens")


def send_time(now: datetime, journey: Journey, *, zone: str, transactional: bool) -> datetime:
    if transactional:
        return now.astimezone(UTC)
    return next_allowed(now, zone=zone, quiet=journey.quiet_hours, window=journey.send_window)
