"""Supporter identity and places: pure functions."""

from __future__ import annotations

import re

import pytest
from email_validator import validate_email
from hypothesis import given
from hypothesis import strategies as st

from engine.rules.geo import POSTAL_PATTERN, place_of
from engine.rules.supporters import PLAIN, normalise_email, parse_email, plain_address


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


@pytest.mark.parametrize(
    "code",
    # "75\u0660\u0661\u0661": Arabic-Indic digits are digits to Python's \\d, not to a code
    ["1234", "123456", "00100", "96000", "98000", "ABCDE", "75\u0660\u0661\u0661"],
)
def test_codes_that_are_not_french_postal_codes_are_refused(code: str) -> None:
    assert place_of(code) is None


@given(st.text(alphabet="0123456789 \t\u00a0\u3000x\u0661", max_size=9))
def test_the_postal_code_pattern_of_the_schema_is_the_server_rule(raw: str) -> None:
    # The API's schema publishes POSTAL_PATTERN: it matches exactly the codes taken, and
    # blanks (no postal code).
    taken = place_of(raw.strip()) is not None or not raw.strip()
    assert (re.match(POSTAL_PATTERN, raw) is not None) == taken


@pytest.mark.parametrize(
    "raw",
    [
        "a@-example.org",  # a label starting with a hyphen
        "x@exa_mple.org",  # an underscore in the domain
        "x@example.test",  # a special-use domain
        "x@ab--cd.fr",  # an R-LDH label that is not Punycode
        "zoe\u200b@example.fr",  # zero-width space: a lookalike of another address
        "zoe\x00@example.fr",
        "x@1.2.3.4",
    ],
)
def test_addresses_the_validation_library_refuses_are_not_addresses(raw: str) -> None:
    assert normalise_email(raw) is None
    with pytest.raises(ValueError, match=r"."):
        parse_email(raw)


def test_international_addresses_are_checked_by_the_library() -> None:
    assert normalise_email("Zoé@Exämple.FR") == "zoé@exämple.fr"
    assert normalise_email("zoé@exa_mple.fr") is None


@given(st.from_regex(PLAIN, fullmatch=True))
def test_the_fast_path_accepts_only_what_the_library_accepts_unchanged(email: str) -> None:
    # Plain addresses skip the library (3 s of a 140,000-row import): they must be a
    # subset of what it accepts, normalised to themselves.
    if plain_address(email):
        assert validate_email(email, check_deliverability=False).normalized == email
