"""French postal codes to département and region (2023 regions, overseas included)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from engine.rules.tabular import BLANK

_REGIONS: dict[str, tuple[str, ...]] = {
    "Auvergne-Rhône-Alpes": (
        "01",
        "03",
        "07",
        "15",
        "26",
        "38",
        "42",
        "43",
        "63",
        "69",
        "73",
        "74",
    ),
    "Bourgogne-Franche-Comté": ("21", "25", "39", "58", "70", "71", "89", "90"),
    "Bretagne": ("22", "29", "35", "56"),
    "Centre-Val de Loire": ("18", "28", "36", "37", "41", "45"),
    "Corse": ("2A", "2B"),
    "Grand Est": ("08", "10", "51", "52", "54", "55", "57", "67", "68", "88"),
    "Hauts-de-France": ("02", "59", "60", "62", "80"),
    "Île-de-France": ("75", "77", "78", "91", "92", "93", "94", "95"),
    "Normandie": ("14", "27", "50", "61", "76"),
    "Nouvelle-Aquitaine": ("16", "17", "19", "23", "24", "33", "40", "47", "64", "79", "86", "87"),
    "Occitanie": ("09", "11", "12", "30", "31", "32", "34", "46", "48", "65", "66", "81", "82"),
    "Pays de la Loire": ("44", "49", "53", "72", "85"),
    "Provence-Alpes-Côte d'Azur": ("04", "05", "06", "13", "83", "84"),
    "Guadeloupe": ("971",),
    "Martinique": ("972",),
    "Guyane": ("973",),
    "La Réunion": ("974",),
    "Mayotte": ("976",),
    # Overseas collectivities have postal codes but no region.
    "": ("975", "977", "978", "986", "987", "988"),
}
REGION_OF: dict[str, str | None] = {
    dept: (region or None) for region, depts in _REGIONS.items() for dept in depts
}
_POSTAL = re.compile(r"^[0-9]{5}$")
# What a postal code may be written as, as a JSON Schema pattern the server matches too:
# five ASCII digits of a known département (two digits, 20 for Corsica; three overseas),
# spaces between them (`75 011`), blanks around. Exact, so the API's schema states it.
_DIGITS_THEN = "(?: *[0-9])"
POSTAL_PATTERN = (
    f"^{BLANK}*(?:(?:0 *[1-9]|[1-8] *[0-9]|9 *[0-5]){_DIGITS_THEN}{{3}}"
    f"|(?:9 *7 *[1-8]|9 *8 *[678]){_DIGITS_THEN}{{2}})?{BLANK}*$"
)
_WRITTEN = re.compile(POSTAL_PATTERN)


@dataclass(frozen=True)
class Place:
    postal_code: str
    departement: str
    region: str | None


def departement_of(postal_code: str) -> str | None:
    if not _POSTAL.match(postal_code):
        return None
    if postal_code.startswith("20"):
        # Corsica: 200xx-201xx are Corse-du-Sud (Ajaccio 20000), 202xx and up Haute-Corse.
        dept = "2A" if postal_code < "20200" else "2B"
    elif postal_code[:2] in ("97", "98"):
        dept = postal_code[:3]
    else:
        dept = postal_code[:2]
    return dept if dept in REGION_OF else None


@lru_cache(maxsize=16384)  # ~6,000 postal codes exist: imports hit the cache
def place_of(raw: str) -> Place | None:
    """`None` when the code is not a French postal code (5 digits of a known département)."""
    if not _WRITTEN.match(raw):
        return None
    code = "".join(c for c in raw if c in "0123456789")
    dept = departement_of(code)
    return Place(code, dept, REGION_OF[dept]) if dept else None
