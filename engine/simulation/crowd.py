"""The demo's people, made up: who signs when, on the curve of a petition that catches the
news; their names, addresses, postal codes and consents; who gave before; the paper sheets.

Addresses are at `example.org`, `example.net` and `example.com`, the names RFC 2606 keeps
for documentation: nobody owns them, and `parse_email` (the one check every door applies)
accepts them, unlike `.invalid` or `.test`. Randomness comes from the caller's seeded
generator: the same seed makes the same crowd.
"""

from __future__ import annotations

import math
import random
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from engine.rules.gifts import GiftRow

DOMAINS = ("example.org", "example.net", "example.com")
FIRST_NAMES = (
    "Camille", "Léa", "Hugo", "Inès", "Louis", "Chloé", "Nathan", "Manon", "Yanis", "Jade",
    "Gabriel", "Louise", "Arthur", "Emma", "Raphaël", "Alice", "Jules", "Lina", "Adam", "Rose",
    "Mohamed", "Anna", "Lucas", "Mila", "Théo", "Zoé", "Noah", "Sarah", "Paul", "Lou",
    "Martine", "Nathalie", "Philippe", "Sylvie", "Bernard", "Isabelle", "Alain", "Catherine",
    "Patrick", "Françoise", "Karim", "Fatima", "Thomas", "Julie", "Nicolas", "Aurélie",
    "Maxime", "Élodie", "Antoine", "Sophie", "Yasmine", "Mehdi", "Gaëlle", "Yann", "Maëlle",
    "Erwan", "Soizic", "Loïc", "Nadia", "Samuel",
)  # fmt: skip
LAST_NAMES = (
    "Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Dubois", "Moreau",
    "Laurent", "Simon", "Michel", "Lefebvre", "Leroy", "Roux", "David", "Bertrand", "Morel",
    "Fournier", "Girard", "Bonnet", "Dupont", "Lambert", "Fontaine", "Rousseau", "Vincent",
    "Muller", "Lefèvre", "Faure", "André", "Mercier", "Blanc", "Guérin", "Boyer", "Garnier",
    "Chevalier", "François", "Legrand", "Gauthier", "Garcia", "Perrin", "Robin", "Clément",
    "Morin", "Nicolas", "Henry", "Roussel", "Mathieu", "Gautier", "Masson", "Le Gall",
    "Le Goff", "Kerboul", "Benali", "Haddad", "Nguyen", "Diallo", "Da Silva", "Ferreira",
    "Lopez",
)  # fmt: skip
# Postal codes and how often they come up: the big cities, their suburbs, and Brittany and
# Île-de-France, which the shipped segments name.
POSTAL_CODES = (
    ("75011", 6), ("75018", 5), ("75015", 4), ("93100", 3), ("92120", 2), ("94200", 2),
    ("91300", 1), ("78000", 1), ("69003", 4), ("69007", 2), ("13001", 4), ("13008", 2),
    ("31000", 3), ("33000", 3), ("44000", 3), ("59000", 3), ("67000", 2), ("34000", 2),
    ("06000", 2), ("38000", 2), ("35000", 3), ("29200", 2), ("56100", 1), ("22000", 1),
    ("49000", 1), ("63000", 1), ("21000", 1), ("76000", 1), ("37000", 1), ("87000", 1),
)  # fmt: skip
# Signatures an hour at each local hour, relative: quiet nights, lunch, a long evening.
DIURNAL = (
    0.15, 0.08, 0.05, 0.04, 0.04, 0.08, 0.25, 0.6, 0.9, 1.0, 1.0, 1.1,
    1.3, 1.3, 1.0, 0.9, 0.9, 1.0, 1.2, 1.5, 1.7, 1.6, 1.1, 0.5,
)  # fmt: skip
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Peak:
    """A burst of signatures: on `day` (after the start) the rate jumps by `height` times
    the baseline, then halves every `half_life` days."""

    day: float
    height: float
    half_life: float


# The launch, a newspaper piece, a television report, a well-known person's post, and the
# news of the 140,000 mark: the shape of a petition that the press picks up.
PEAKS = (
    Peak(0.3, 2.0, 1.0),
    Peak(6.4, 7.0, 1.2),
    Peak(13.3, 14.0, 1.6),
    Peak(21.5, 5.0, 1.4),
    Peak(28.0, 2.5, 1.0),
)


def rate(day: float) -> float:
    """Signatures an hour `day` days after the start, relative to the baseline: a slow
    start, the peaks and their decay, and interest fading over the weeks."""
    ramp = min(1.0, 0.3 + day / 3)
    base = ramp * math.exp(-day / 30)
    bursts = sum(
        p.height * math.pow(0.5, (day - p.day) / p.half_life) for p in PEAKS if day >= p.day
    )
    return base + bursts


def hourly(count: int, begin: datetime, hours: int, zone: ZoneInfo) -> list[int]:
    """`count` signatures spread over `hours` whole hours from `begin` along `rate` and the
    day's rhythm (largest remainders: the counts add up to `count` exactly)."""
    weights = [
        rate(h / 24) * DIURNAL[(begin + h * HOUR).astimezone(zone).hour] for h in range(hours)
    ]
    total = sum(weights)
    exact = [count * w / total for w in weights]
    counts = [int(x) for x in exact]
    short = count - sum(counts)
    for h in sorted(range(hours), key=lambda h: counts[h] - exact[h])[:short]:
        counts[h] += 1
    return counts


@dataclass(frozen=True)
class Person:
    index: int
    email: str | None  # None: a paper signature
    first_name: str
    last_name: str
    postal_code: str
    signed_at: datetime
    updates: bool
    fundraising: bool

    def cells(self) -> list[str]:
        """The row as the signature columns (`COLUMNS`) give it, consents as yes/no."""
        return [
            self.email or "",
            self.first_name,
            self.last_name,
            self.postal_code,
            self.signed_at.isoformat(),
            "yes" if self.updates else "no",
            "yes" if self.fundraising else "no",
        ]


COLUMNS = (
    "email",
    "first_name",
    "last_name",
    "postal_code",
    "signed_at",
    "consent_updates",
    "consent_fundraising",
)


def _ascii(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return folded.lower().replace(" ", "")


def address(first: str, last: str, index: int) -> str:
    """A plausible address, unique by `index`."""
    f, last_ = _ascii(first), _ascii(last)
    local = (f"{f}.{last_}{index}", f"{f}{last_}{index}", f"{f[0]}{last_}{index}")[index % 3]
    return f"{local}@{DOMAINS[index % len(DOMAINS)]}"


class Crowd:
    """Makes people one at a time, each with a new index."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.made = 0
        codes, weights = zip(*POSTAL_CODES, strict=True)
        self._codes: tuple[str, ...] = codes
        self._weights: tuple[int, ...] = weights

    def person(self, signed_at: datetime, *, paper: bool = False) -> Person:
        rng = self.rng
        self.made += 1
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        # Most who take news also accept an appeal; a few accept only the appeal.
        updates = rng.random() < 0.72
        fundraising = rng.random() < (0.75 if updates else 0.1)
        return Person(
            index=self.made,
            email=None if paper else address(first, last, self.made),
            first_name=first,
            last_name=last,
            postal_code=rng.choices(self._codes, self._weights)[0],
            signed_at=signed_at,
            updates=updates and not paper,
            fundraising=fundraising and not paper,
        )

    def hour(self, count: int, start: datetime) -> list[Person]:
        """`count` signers at random minutes of the hour from `start`, in time order."""
        people = [self.person(start + self.rng.random() * HOUR) for _ in range(count)]
        return sorted(people, key=lambda p: p.signed_at)

    def earlier_gift(self, person: Person, begin: datetime) -> GiftRow:
        """A gift made before the campaign: a third monthly, the rest one-off."""
        rng = self.rng
        assert person.email is not None
        monthly = rng.random() < 1 / 3
        cents = rng.choice((1000, 1500, 2000) if monthly else (2000, 3000, 5000, 8000, 15000))
        return GiftRow(
            line=person.index,
            email=person.email,
            amount_cents=cents,
            currency="EUR",
            donated_at=begin - timedelta(days=rng.randrange(30, 700), hours=rng.randrange(24)),
            frequency="monthly" if monthly else "one-off",
            external_id=f"demo-earlier-{person.index}",
            reference=None,
        )


@dataclass(frozen=True)
class Sheets:
    """Paper signatures gathered at a weekend's stands, typed in and imported later."""

    imported_at: datetime
    people: list[Person]


def paper(
    crowd: Crowd, count: int, *, begin: datetime, end: datetime, zone: ZoneInfo
) -> list[Sheets]:
    """`count` paper signatures over the Saturdays of the campaign (14:00 to 18:00), each
    weekend's sheets imported on the Monday after at noon, when that is before `end`."""
    first = begin.astimezone(zone)
    saturdays = []
    day = first.replace(hour=14, minute=0, second=0, microsecond=0)
    while day < end:
        monday = (day + timedelta(days=2)).replace(hour=12)
        if day.weekday() == 5 and day >= first and monday <= end:
            saturdays.append((day, monday))
        day += timedelta(days=1)
    found: list[Sheets] = []
    for k, (saturday, monday) in enumerate(saturdays):
        share = count // len(saturdays) + (1 if k < count % len(saturdays) else 0)
        people = [
            crowd.person(saturday + crowd.rng.random() * 4 * HOUR, paper=True) for _ in range(share)
        ]
        found.append(Sheets(monday, people))
    return found
