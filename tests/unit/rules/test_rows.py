"""CSV cells and signature rows: pure parsing."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from engine.rules.signature_rows import (
    SIGNATURE_COLUMNS,
    WEB_FIELDS,
    RowError,
    json_fields,
    parse_signer,
    refused_names,
    signer_parser,
)
from engine.rules.tabular import (
    map_headers,
    parse_flag,
    parse_timestamp,
    safe_cell,
    unseen_character,
)

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


@pytest.mark.parametrize(
    "value",
    [
        "=1+1",
        "+33",
        "-2",
        "@SUM(A1)",
        "\tx",
        "\rx",
        "＝1+1",  # full-width: NFKC folds it to =, and spreadsheets may too
        "＋33",
        "－2",
        "＠SUM(A1)",
        "﹦1+1",  # small equals sign
        "  =1+1",  # spreadsheets skip leading blanks
        "\t=1+1",
        " \u00a0\u3000＝HYPERLINK(0)",
    ],
)
def test_cells_that_a_spreadsheet_would_run_are_quoted(value: str) -> None:
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["Camille", " Camille", "75011", "a=b", "", "  "])
def test_other_cells_are_left_as_they_are(value: str) -> None:
    assert safe_cell(value) == value


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


def test_names_are_checked_in_one_pass_that_stops_at_the_limit() -> None:
    # Given 50,000 names the door does not take, from a source that fails if read further
    def names() -> Iterator[str]:
        for i in range(50_000):
            if i > 11:
                raise AssertionError("read past the limit")
            yield f"consent_x{i}"

    # When they are checked
    problems = refused_names(names(), fields=WEB_FIELDS, purposes={"updates"}, limit=10)

    # Then the first ten are named, with a note that there are more
    assert [p.field for p in problems] == [f"consent_x{i}" for i in range(10)] + [None]


def test_unknown_fields_and_purposes_are_told_apart() -> None:
    problems = refused_names(
        ["email", "consent_updates", "colour", "consent_newsletter", "signed_at"],
        fields=WEB_FIELDS,
        purposes={"updates"},
    )

    assert [(p.field, p.message) for p in problems] == [
        ("colour", "colour: unknown field"),
        (
            "consent_newsletter",
            "consent_newsletter: 'newsletter' is not a consent purpose of this petition",
        ),
        ("signed_at", "signed_at: unknown field"),
    ]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (
            {"email": "a@b.fr", "consent_updates": True},
            {"email": "a@b.fr", "consent_updates": "yes"},
        ),
        (
            {"email": "a@b.fr", "consents": {"updates": False}},
            {"email": "a@b.fr", "consent_updates": "no"},
        ),
        ({"email": "a@b.fr", "first_name": None, "consent_updates": None}, {"email": "a@b.fr"}),
    ],
)
def test_json_gives_the_text_fields_of_a_form(
    body: dict[str, object], fields: dict[str, str]
) -> None:
    assert json_fields(body, purposes={"updates"}) == (fields, [])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (["a@b.fr"], "body"),
        ({"email": "a@b.fr", "consents": ["updates"]}, "consents"),
        ({"email": "a@b.fr", "consent_updates": "yes"}, "consent_updates"),
        ({"email": "a@b.fr", "consents": {"updates": 1}}, "consents.updates"),
        # One way to answer, even when both would agree: the schema states it (anyOf).
        (
            {"email": "a@b.fr", "consent_updates": True, "consents": {"updates": False}},
            "consents",
        ),
        ({"email": "a@b.fr", "consent_updates": True, "consents": {"updates": True}}, "consents"),
        ({"email": 75011}, "email"),
    ],
)
def test_json_of_the_wrong_shape_is_refused_naming_the_field(body: object, field: str) -> None:
    _, problems = json_fields(body, purposes={"updates"})

    assert [p.field for p in problems] == [field]


def test_dates_beyond_the_years_of_a_datetime_are_not_dates() -> None:
    for raw in ("0001-01-01", "9999-12-31T23:59:59-12:00"):
        with pytest.raises(ValueError, match="out of the range of dates"):
            parse_timestamp(raw, PARIS)


@pytest.mark.parametrize(
    ("values", "field", "reason"),
    [
        ({"email": "a@b.fr", "signed_at": "1899-12-31T23:00:00Z"}, "signed_at", "before 1900"),
        ({"email": "a@b.fr", "signed_at": "0001-01-01"}, "signed_at", "out of the range"),
        ({"email": "a@b.fr", "first_name": "x" * 101}, "first_name", "longer than 100"),
        ({"email": "a@b.fr", "last_name": "Lee\u200d"}, "last_name", "ZERO WIDTH JOINER"),
        ({"email": "a@b.fr", "postal_code": "\x0775011"}, "postal_code", r"U\+0007"),
        ({"email": "a@b.fr", "consent_updates": "oui\ufeff"}, "consent_updates", r"U\+FEFF"),
        ({"email": "a@b.fr\u202e"}, "email", "RIGHT-TO-LEFT OVERRIDE"),
        ({"email": "a@-example.org"}, "email", "hyphen"),
    ],
)
def test_a_bad_value_is_refused_with_its_field_and_reason(
    values: dict[str, str], field: str, reason: str
) -> None:
    with pytest.raises(RowError, match=reason) as refused:
        parse(**values)
    assert refused.value.field == field


def test_names_keep_whitespace_but_not_what_cannot_be_seen() -> None:
    row = parse(email="a@b.fr", first_name=" Zoé\tAnne\n", last_name="x" * 100)
    assert row is not None
    assert (row.first_name, row.last_name) == ("Zoé Anne", "x" * 100)


@pytest.mark.parametrize(
    "name",
    [
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647",  # Persian: a ZWNJ between two letters
        "\u0915\u094d\u200d\u0937",  # Devanagari: a ZWJ after a virama (a mark)
    ],
)
def test_names_keep_the_joiners_their_scripts_spell_with(name: str) -> None:
    row = parse(email="a@b.fr", first_name=name, last_name=name)
    assert row is not None
    assert (row.first_name, row.last_name) == (name, name)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("first_name", "Zo\u00e9\u200d"),  # a joiner joining nothing
        ("last_name", "\u200cMartin"),
        ("first_name", "Zo\u200d 7"),
        ("email", "zo\u200de@example.fr"),  # between letters, still a lookalike address
        ("postal_code", "75\u200d011"),
    ],
)
def test_joiners_anywhere_else_are_refused(field: str, value: str) -> None:
    with pytest.raises(RowError, match="U\\+200[CD] ZERO WIDTH") as refused:
        parse(**{"email": "a@b.fr", field: value})
    assert refused.value.field == field


def test_the_unseen_characters_are_the_controls_formats_surrogates_and_private_uses() -> None:
    # The class is listed in the code; Python's Unicode database is the reference (the list
    # also holds format characters of later Unicode versions, unassigned in this one).
    refused = {"Cc", "Cf", "Cs", "Co"}
    for code in range(0x110000):
        char = chr(code)
        category = unicodedata.category(char)
        if category in refused and char not in "\t\n\r":
            assert unseen_character(char) is not None, f"U+{code:04X} is let through"
        elif category != "Cn":
            assert unseen_character(char) is None, f"U+{code:04X} is refused"


def test_a_ticked_checkbox_is_yes() -> None:
    assert (parse_flag("on"), parse_flag("off")) == (True, False)
