"""Which clicks a prefetcher or a security scanner made, as a rule of their times alone.

Mail gateways open every link of an email as it arrives; people do not read that fast.
Within `burst` (MOBILISE_AUTOMATED_CLICK_SECONDS, 10 s by default) a click is automated
when two different links of one email are clicked within `burst` of each other, or when
the email was sent less than `burst` before. When a click makes that so, every click of
that email in the `burst` before it is automated too (the scanner's first click is only
known for one once its second arrives).

The store reads an email's recent clicks and applies this rule to the new ones, in time
order, as if each had arrived alone (engine/store/clicks.py).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Seen:
    """A click of one email: its link, its time and, if recorded already, its id and
    whether it is flagged (a new click has no id yet)."""

    position: int
    at: datetime
    automated: bool = False
    click_id: int | None = None


@dataclass(frozen=True)
class Verdict:
    """The flags of the new clicks, in the order given, and the ids of recorded clicks
    that become automated."""

    new: tuple[bool, ...]
    flipped: frozenset[int]


def one_link_late(
    positions: Collection[int], *, sent_at: datetime | None, earliest: datetime, burst: timedelta
) -> bool:
    """Whether the rule can flag none of an email's clicks, from the links they are on
    (`positions`: its recent clicks' and the new ones') and the earliest new one alone:
    one link only, and the email sent at least `burst` before. A reader clicking again;
    the store then need not read the recent clicks themselves (engine/store/clicks.py)."""
    return len(positions) <= 1 and (sent_at is None or sent_at <= earliest - burst)


def automated(
    recorded: Sequence[Seen],
    new: Sequence[Seen],
    *,
    sent_at: datetime | None,
    burst: timedelta,
) -> Verdict:
    """The flags after `new` clicks of one email, given its `recorded` clicks (at least
    those of the `burst` before the earliest new one) and when it was sent."""
    if len(new) == 1 and not recorded:  # most clicks: the email's only one of late
        alone = new[0]
        return Verdict((sent_at is not None and sent_at > alone.at - burst,), frozenset())
    positions = {c.position for c in recorded} | {c.position for c in new}
    earliest = min((c.at for c in new), default=None)
    if earliest is not None and one_link_late(
        positions, sent_at=sent_at, earliest=earliest, burst=burst
    ):
        return Verdict((False,) * len(new), frozenset())
    order = sorted(range(len(new)), key=lambda i: new[i].at)
    flags = {id(c): c.automated for c in recorded}
    flags.update((id(c), False) for c in new)
    seen: list[Seen] = list(recorded)
    for index in order:
        click = new[index]
        seen.append(click)
        since = click.at - burst
        window = [c for c in seen if since < c.at <= click.at]
        just_sent = sent_at is not None and sent_at > since
        if just_sent or len({c.position for c in window}) > 1:
            for c in window:
                flags[id(c)] = True
    return Verdict(
        new=tuple(flags[id(c)] for c in new),
        flipped=frozenset(
            c.click_id
            for c in recorded
            if c.click_id is not None and flags[id(c)] and not c.automated
        ),
    )
