"""A webhook's timestamp is Unix seconds in plain ASCII digits, or it is malformed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.track.stamps import signed_at


def test_unix_seconds_are_read_as_a_utc_moment() -> None:
    assert signed_at("1779732000") == datetime(2026, 5, 25, 18, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "raw",
    [
        " 1779732000",
        "+1779732000",
        "1_779_732_000",
        "1779732000.5",
        "-5",
        "",
        "\u0661\u0662",
        "9" * 13,
    ],
)
def test_anything_else_is_malformed(raw: str) -> None:
    # What int() would also read (blanks, a sign, underscores, other scripts' digits)
    with pytest.raises(ValueError, match="Unix seconds"):
        signed_at(raw)
