"""CSV cells and signature rows: pure parsing."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from engine.rules.signers import SIGNATURE_COLUMNS, RowError, parse_signer, signer_parser
from engine.rules.tabular import map_headers, parse_flag, parse_timestamp, safe_cell

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2024, 6, 1, tzinfo=UTC)


def parse(**values: str):  # type: ignore[no-untyped-def]
    return parse_signer(values, line=7, now=NOW, zone=PARIS, purposes={"updates"})


def test_french_and_english_headers_map_to_the_same_columns() -> None:
    mapping, unknown = map_headers(
        [
            "Courriel",
            "Prénom",
            "NOM",
            "Code postal",
            "date de signature",
            "consentement_nouvelles",
            "Couleur",
        ],
        SIGNATURE_COLUMNS,
    )
    assert list(mapping.values()) == [
        "email",
        "first_name",
        "last_name",
        "postal_code",
        "signed_at",
        "consent_updates",
    ]
    assert unknown == ["Couleur"]


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("oui", True),
        ("Yes", True),
        ("1", True),
        ("true", True),
        ("non", False),
        ("NO", False),
        ("0", False),
        ("false", False),
        ("", None),
    ],
)
def test_yes_no_values_in_both_languages(raw: str, value: bool | None) -> None:
    assert parse_flag(raw) is value


def test_a_naive_date_is_in_the_campaign_time_zone() -> None:
    assert parse_timestamp("13/05/2024 18:30", PARIS) == datetime(2024, 5, 13, 16, 30, tzinfo=UTC)
    assert parse_timestamp("2024-01-13", PARIS) == datetime(2024, 1, 12, 23, 0, tzinfo=UTC)
    assert parse_timestamp("2024-05-13T10:00:00Z", PARIS) == datetime(2024, 5, 13, 10, tzinfo=UTC)


@pytest.mark.parametrize("value", ["=1+1", "+33", "-2", "@SUM(A1)", "\tx"])
def test_cells_that_a_spreadsheet_would_run_are_quoted(value: str) -> None:
    assert safe_cell(value) == "'" + value


def test_a_row_without_email_but_with_a_name_is_a_paper_signature() -> None:
    row = parse(first_name="Jeanne", last_name="Papier", postal_code="20000")
    assert row is not None
    assert row.email is None
    assert row.paper_key is not None
    assert row.departement == "2A"
    again = parse(first_name="Jeanne", last_name="Papier", postal_code="20000")
    assert again is not None
    assert again.paper_key == row.paper_key


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"email": "nope"}, "email"),
        ({"email": "a@b.fr", "postal_code": "7501"}, "postal_code"),
        ({"email": "a@b.fr", "signed_at": "yesterday"}, "signed_at"),
        ({"email": "a@b.fr", "signed_at": "2030-01-01"}, "signed_at"),
        ({"email": "a@b.fr", "consent_updates": "maybe"}, "consent_updates"),
        ({"postal_code": "75011"}, "email"),
    ],
)
def test_a_bad_row_says_which_field(values: dict[str, str], field: str) -> None:
    with pytest.raises(RowError) as refused:
        parse(**values)
    assert refused.value.field == field


def test_an_empty_row_is_skipped_and_consents_keep_declared_purposes() -> None:
    assert parse(email="", first_name=" ") is None
    row = parse(email="a@b.fr", consent_updates="oui", consent_other="oui")
    assert row is not None
    assert row.consents == {"updates": True}


def test_a_layout_reads_cells_by_position_and_lacking_columns_as_empty() -> None:
    # Given a file whose columns come in another order, without postal code or date
    parse = signer_parser(
        {"consent_updates": 0, "last_name": 1, "email": 2},
        now=NOW,
        zone=PARIS,
        purposes={"updates", "fundraising"},
    )

    # When a row is read (cells as read, then the empty cell that stands for the others)
    row = parse(["oui", "Durand", " Anne@B.fr ", ""], 12)

    # Then each value comes from its own column and the others are empty
    assert row is not None
    assert (row.line, row.email, row.last_name, row.first_name) == (12, "anne@b.fr", "Durand", None)
    assert (row.postal_code, row.signed_at, row.consents) == (None, NOW, {"updates": True})


def test_a_row_with_only_a_consent_the_petition_does_not_ask_is_refused_not_skipped() -> None:
    # Given a layout with a consent column for a purpose the petition does not declare
    parse = signer_parser(
        {"email": 0, "consent_other": 1}, now=NOW, zone=PARIS, purposes={"updates"}
    )

    # When a row has nothing but that consent, or nothing at all
    # Then the first is refused (it is not empty) and the second skipped
    with pytest.raises(RowError) as refused:
        parse(["", "oui", ""], 3)
    assert refused.value.field == "email"
    assert parse([" ", "", ""], 4) is None
