"""Supporters' rights, the pure part: what a rectification may change, and the retention
rule (docs/privacy.md).

Rectified fields are normalised exactly as a signature's are (engine/rules/signature_rows.py), so
that a corrected address still finds the same supporter and a corrected postal code still
places them in their département and region.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.config import Secret
from engine.errors import Invalid, Problem
from engine.rules.geo import place_of
from engine.rules.signature_rows import NAME_MAX
from engine.rules.supporters import clean_name, email_hashes, parse_email
from engine.rules.tabular import UNSEEN, shown, unseen_character

RECTIFIABLE = ("email", "first_name", "last_name", "postal_code")


@dataclass(frozen=True)
class Rectification:
    """The supporter columns to set: only those named change (None blanks a name)."""

    values: Mapping[str, str | None]

    @property
    def fields(self) -> list[str]:
        return sorted(self.values)


def rectification(given: Mapping[str, str | None]) -> Rectification:
    """Normalise the fields to correct; Invalid naming every bad or unknown field."""
    problems: list[Problem] = []
    values: dict[str, str | None] = {}
    for name, raw in given.items():
        if name not in RECTIFIABLE:
            problems.append(
                Problem(f"{name} cannot be rectified", field=name, hint=", ".join(RECTIFIABLE))
            )
            continue
        if raw is not None and UNSEEN.search(raw):
            problems.append(Problem(f"{unseen_character(raw)} is not allowed", field=name))
            continue
        try:
            values.update(_normalised(name, raw))
        except ValueError as exc:
            problems.append(Problem(str(exc), field=name))
    if not values and not problems:
        problems.append(Problem("nothing to rectify", hint=f"give one of {', '.join(RECTIFIABLE)}"))
    if problems:
        raise Invalid("the rectification is invalid", problems=problems)
    return Rectification(values)


def _normalised(name: str, raw: str | None) -> dict[str, str | None]:
    if name == "email":
        if not raw:
            raise ValueError("an address cannot be blanked: erase the supporter instead")
        try:
            return {"email": parse_email(raw)}
        except ValueError as exc:
            raise ValueError(f"'{shown(raw)}' is not a valid email address: {exc}") from None
    if name == "postal_code":
        if not raw or not raw.strip():
            return {"postal_code": None, "departement": None, "region": None}
        place = place_of(raw)
        if place is None:
            raise ValueError(f"'{shown(raw)}' is not a French postal code")
        return {
            "postal_code": place.postal_code,
            "departement": place.departement,
            "region": place.region,
        }
    cleaned = clean_name(raw)
    if cleaned is not None and len(cleaned) > NAME_MAX:
        raise ValueError(f"longer than {NAME_MAX} characters ({len(cleaned):,})")
    return {name: cleaned}


@dataclass(frozen=True)
class Retention:
    """How long a supporter's data is kept after their last own contact (a signature, a
    non-automated click, a gift; an open is not one), and a donor's after their last gift."""

    contact: timedelta
    donor: timedelta

    def cuts(self, now: datetime) -> tuple[datetime, datetime]:
        """(contact cut, gift cut): a supporter whose last contact is before the first, and
        who gave nothing since the second, is anonymised."""
        return now - self.contact, now - self.donor

    def expired(
        self, last_contact: datetime | None, last_gift: datetime | None, now: datetime
    ) -> bool:
        """The rule for one supporter (the store applies it set-based, tested against this)."""
        contact_cut, gift_cut = self.cuts(now)
        if last_contact is None or last_contact >= contact_cut:
            return False
        return last_gift is None or last_gift < gift_cut


@dataclass(frozen=True)
class ErasedAddresses:
    """The addresses whose owners asked for erasure, as the keyed hashes the suppressions
    keep: `email in erased` hashes only when there is any (an import of 140,000 rows
    then costs nothing more)."""

    secret: Secret
    hashes: frozenset[str] = frozenset()

    def __contains__(self, email: object) -> bool:
        return (
            bool(self.hashes)
            and isinstance(email, str)
            and not self.hashes.isdisjoint(email_hashes(email, self.secret))
        )


# Why an import refuses the row of an erased address (its rejects file says it).
ERASED_REASON = "this address was erased at its owner's request: it is not imported again"
