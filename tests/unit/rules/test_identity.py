"""Supporter identity and places: pure functions."""

from __future__ import annotations

import pytest

from engine.rules.geo import place_of
from engine.rules.supporters import normalise_email


@pytest.mark.parametrize(
    "raw",
    [
        "camille@example.fr",
        "  Camille@Example.FR\t",
        "CAMILLE@EXAMPLE.FR",
        "ｃａｍｉｌｌｅ@example.fr",  # full-width letters: NFKC folds them
    ],
)
def test_every_spelling_of_one_address_is_one_supporter(raw: str) -> None:
    assert normalise_email(raw) == "camille@example.fr"


def test_decomposed_and_composed_accents_are_the_same_address() -> None:
    assert normalise_email("zoe\u0301@example.fr") == normalise_email("zo\u00e9@example.fr")


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "camille",
        "camille@",
        "@example.fr",
        "ca mille@example.fr",
        "camille@example",
        "camille..x@example.fr",
        "a@b@example.fr",
        "x" * 65 + "@a.fr",
    ],
)
def test_what_is_not_an_address_is_refused(raw: str) -> None:
    assert normalise_email(raw) is None


@pytest.mark.parametrize(
    ("code", "departement", "region"),
    [
        ("75011", "75", "Île-de-France"),
        ("01000", "01", "Auvergne-Rhône-Alpes"),
        ("20000", "2A", "Corse"),
        ("20167", "2A", "Corse"),
        ("20200", "2B", "Corse"),
        ("20600", "2B", "Corse"),
        ("97110", "971", "Guadeloupe"),
        ("97200", "972", "Martinique"),
        ("97300", "973", "Guyane"),
        ("97411", "974", "La Réunion"),
        ("97600", "976", "Mayotte"),
        ("98800", "988", None),
        (" 13 001 ", "13", "Provence-Alpes-Côte d'Azur"),
    ],
)
def test_postal_codes_resolve_to_departement_and_region(
    code: str, departement: str, region: str | None
) -> None:
    place = place_of(code)
    assert place is not None
    assert (place.departement, place.region) == (departement, region)


@pytest.mark.parametrize("code", ["1234", "123456", "00100", "96000", "98000", "ABCDE"])
def test_codes_that_are_not_french_postal_codes_are_refused(code: str) -> None:
    assert place_of(code) is None
