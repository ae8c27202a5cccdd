"""Durations as campaign managers write them: `30m`, `48h`, `3d`, `2w`."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d+)\s*(m|h|d|w)\s*$")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
_UNITS["w"] = timedelta(weeks=1)
# Anything longer is almost certainly a typo (`300d` for `30d`); a year is plenty for a journey.
LONGEST = timedelta(days=366)


def parse_duration(text: str) -> timedelta:
    """Raise ValueError with a hint on anything but a positive amount of m/h/d/w."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"bad duration {text!r}: write a whole number and a unit, e.g. 30m, 48h, 3d, 2w"
        )
    value = int(match.group(1)) * _UNITS[match.group(2)]
    if value <= timedelta(0):
        raise ValueError(f"bad duration {text!r}: it must be longer than zero")
    if value > LONGEST:
        raise ValueError(f"bad duration {text!r}: longer than a year")
    return value
