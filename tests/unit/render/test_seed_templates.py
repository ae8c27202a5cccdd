"""The seed campaign's templates: valid, accessible, complete and under Gmail's limit."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from engine.render import asks, french, tokens, variables
from engine.render.library import TemplateLibrary
from engine.render.links import DONATION_LINK
from engine.render.template_checks import MAX_HTML_BYTES, validate_templates
from tests.unit.render.conftest import BASE_URL, SECRET

SEEDS = ["ask-additional", "ask-first", "ask-first-short", "confirm", "thanked", "update"]
NBSP = "\u00a0"


@pytest.fixture(scope="module")
def library() -> TemplateLibrary:
    return TemplateLibrary(Path(__file__).resolve().parents[3] / "templates" / "email")


def render(library: TemplateLibrary, name: str, **context: object) -> object:
    values = {**variables.sample_context(), **context}
    return library.get(name).render(
        values, message_id=7, journey="stop-reconnaissance-faciale", step=name,
        base_url=BASE_URL, secret=SECRET,
    )  # fmt: skip


def test_the_seed_templates_are_all_there(library: TemplateLibrary) -> None:
    assert library.names() == SEEDS


def test_the_seed_templates_validate(library: TemplateLibrary) -> None:
    assert validate_templates(library.directory) == []


@pytest.mark.parametrize("name", SEEDS)
def test_each_seed_is_complete_and_small(library: TemplateLibrary, name: str) -> None:
    # Given a seed template rendered with sample data
    email = library.get(name).render(
        variables.sample_context(), message_id=7, journey="j", step=name,
        base_url=BASE_URL, secret=SECRET,
    )  # fmt: skip
    # Then it stays under the size at which Gmail clips
    assert len(email.html.encode()) < MAX_HTML_BYTES
    # And it is French, with alt texts, the postal address and an unsubscribe link
    assert '<html lang="fr"' in email.html
    assert all('alt="' in img for img in re.findall(r"<img[^>]*>", email.html))
    assert "12 rue de l'Exemple, 75011 Paris" in email.html
    assert "12 rue de l'Exemple, 75011 Paris" in email.text
    unsubscribe = f"{BASE_URL}/u/{tokens.unsubscribe_token(SECRET, 7)}"
    assert f'href="{unsubscribe}"' in email.html
    assert "[Se désinscrire]" in email.text
    assert unsubscribe in email.text
    # And a link to the supporter's rights page, signed for this email
    rights = f"{BASE_URL}/rights/{tokens.rights_token(SECRET, 7)}"
    assert f'href="{rights}"' in email.html
    assert rights in email.text
    # And its text part has no leftover markup or placeholders
    assert "<" not in email.text.replace("<script>", "")
    assert "mjinja" not in email.html + email.text


def test_only_the_thank_you_and_confirmation_are_transactional(library: TemplateLibrary) -> None:
    transactional = {name for name in SEEDS if library.get(name).transactional}
    assert transactional == {"thanked", "confirm"}


def test_the_update_shows_the_live_count(library: TemplateLibrary) -> None:
    email = library.get("update").render(
        {"first_name": "Léa", "signature_count": 141_207, "milestone": 140_000},
        message_id=1, journey="j", step="update", base_url=BASE_URL, secret=SECRET,
    )  # fmt: skip
    assert email.subject == f"Nous sommes 141{NBSP}207 : merci Léa !"
    assert f"141{NBSP}207 signatures" in email.text
    assert f"dépasser les 140{NBSP}000 signatures" in email.text


def test_an_update_sent_on_a_timeout_names_no_milestone(library: TemplateLibrary) -> None:
    email = library.get("update").render(
        {"first_name": "Léa", "signature_count": 131_000, "milestone": None},
        message_id=1, journey="j", step="update", base_url=BASE_URL, secret=SECRET,
    )  # fmt: skip
    assert "dépasser" not in email.text
    assert "Chaque signature, dont la vôtre" in email.text


def test_the_additional_ask_is_sized_from_the_last_gift(library: TemplateLibrary) -> None:
    email = library.get("ask-additional").render(
        {"first_name": "Léa", "last_gift": Decimal(20), "last_gift_monthly": False},
        message_id=1, journey="j", step="ask-additional", base_url=BASE_URL, secret=SECRET,
    )  # fmt: skip
    assert f"un don de 20,00{NBSP}€" in email.text
    assert "Accepteriez-vous de renouveler votre soutien ?" in email.text
    assert f"Je donne 20{NBSP}€" in email.text
    assert f"Je donne 30{NBSP}€ (soit 10,20{NBSP}€ après impôt)" in email.text
    assert f"Je donne 40{NBSP}€ (soit 13,60{NBSP}€ après impôt)" in email.text
    assert f"réduction d'impôt de 66{NBSP}%" in email.text


def test_a_monthly_donor_is_asked_for_an_exceptional_gift_from_the_monthly_amount(
    library: TemplateLibrary,
) -> None:
    # Given a donor whose last gift is a 20 € monthly payment
    email = library.get("ask-additional").render(
        {"first_name": "Léa", "last_gift": Decimal(20), "last_gift_monthly": True},
        message_id=1, journey="j", step="ask-additional", base_url=BASE_URL, secret=SECRET,
    )  # fmt: skip
    # Then the email names the monthly gift and asks for one gift more, from 20 €
    assert f"chaque mois par un don de 20,00{NBSP}€." in email.text
    assert "En plus de votre don mensuel, accepteriez-vous de faire un don exceptionnel ?" in (
        email.text
    )
    assert f"un don de 20{NBSP}€ ne vous revient qu'à 6,80{NBSP}€" in email.text
    assert f"Je donne 30{NBSP}€ (soit 10,20{NBSP}€ après impôt)" in email.text
    assert f"Je donne 40{NBSP}€ (soit 13,60{NBSP}€ après impôt)" in email.text
    assert "renouveler" not in email.text


def test_the_additional_ask_survives_a_missing_last_gift(library: TemplateLibrary) -> None:
    email = library.get("ask-additional").render(
        {"first_name": "Léa", "last_gift": None, "last_gift_monthly": False},
        message_id=1, journey="j", step="ask-additional", base_url=BASE_URL, secret=SECRET,
    )  # fmt: skip
    assert "Vous avez déjà soutenu Vigie Libertés. C'est grâce" in email.text
    assert f"Je donne 15{NBSP}€" in email.text


def test_the_first_ask_uses_the_default_ladder(library: TemplateLibrary) -> None:
    email = library.get("ask-first").render(
        {"first_name": "", "signature_count": 140_000},
        message_id=1, journey="j", step="ask-first", base_url=BASE_URL, secret=SECRET,
    )  # fmt: skip
    assert email.subject == "Et si vous alliez plus loin que la signature ?"
    assert f"donner 15{NBSP}€ ne vous revient qu'à 5,10{NBSP}€" in email.text
    assert f"Je donne 50{NBSP}€ (soit 17,00{NBSP}€ après impôt)" in email.text
    assert "Bonjour," in email.text


def test_a_tax_reduction_can_be_passed_per_render(library: TemplateLibrary) -> None:
    email = library.get("ask-first").render(
        {"first_name": "A", "signature_count": 1, "tax_reduction": Decimal("0.75")},
        message_id=1, journey="j", step="ask-first", base_url=BASE_URL, secret=SECRET,
    )  # fmt: skip
    assert f"donner 15{NBSP}€ ne vous revient qu'à 3,75{NBSP}€" in email.text


def test_the_variables_each_template_needs(library: TemplateLibrary) -> None:
    assert library.variables() == {
        "ask-additional": {"first_name", "last_gift", "last_gift_monthly"},
        "ask-first": {"first_name", "signature_count"},
        "ask-first-short": {"first_name", "signature_count"},
        "confirm": {"first_name", "confirm_url"},
        "thanked": {"first_name"},
        "update": {"first_name", "milestone", "signature_count"},
    }


_ANCHOR = re.compile(r'<a href="([^"]+)"[^>]*>(.*?)</a>', re.DOTALL)


def _one_line(label: str) -> str:
    # Not str.split(): the no-break spaces of "20 €" stay.
    return re.sub(r"[ \t\r\n]+", " ", label).strip()


@pytest.mark.parametrize(
    ("template", "last_gift", "amounts"),
    [
        ("ask-first", None, (15, 30, 50)),
        ("ask-first-short", None, (15, 30, 50)),
        ("ask-additional", Decimal(20), (20, 30, 40)),
        ("ask-additional", Decimal(35), (35, 55, 70)),
    ],
)
def test_each_ask_button_links_the_amount_it_shows_and_its_cost_after_tax(
    library: TemplateLibrary, template: str, last_gift: Decimal | None, amounts: tuple[int, ...]
) -> None:
    # Given an ask rendered for a supporter (message 7)
    email = render(library, template, last_gift=last_gift)
    assert library.get(template).links.count(DONATION_LINK) == 3
    # When the buttons' tracked URLs are read back
    buttons = [
        (tokens.read_donation_token(SECRET, href.rsplit("/c/", 1)[1]), _one_line(label))
        for href, label in _ANCHOR.findall(email.html)  # type: ignore[attr-defined]
        if label.strip().startswith("Je donne")
    ]
    # Then each carries, signed, the amount its label shows, one-off, for this message
    assert [found[2] for found, _ in buttons if found] == [a * 100 for a in amounts]
    for found, label in buttons:
        assert found is not None
        message_id, _, cents, frequency = found
        assert (message_id, frequency) == (7, "one-off")
        euros = Decimal(cents) / 100
        assert label.startswith(f"Je donne {french.money(euros, 'EUR', cents=False)}")
        # And the cost after tax shown next to it is that amount's
        if "soit" in label:
            assert f"soit {french.money(asks.after_tax(euros), 'EUR')} après impôt" in label
    # And the text part links the same URLs
    for href, _ in _ANCHOR.findall(email.html):  # type: ignore[attr-defined]
        assert href in email.text  # type: ignore[attr-defined]


def test_the_library_compiles_each_version_once() -> None:
    # Given a fresh library, when one template is fetched and rendered 100 times
    library = TemplateLibrary(Path(__file__).resolve().parents[3] / "templates" / "email")
    for message_id in range(100):
        library.get("thanked").render(
            {"first_name": "A"}, message_id=message_id, journey="j", step="thanked",
            base_url=BASE_URL, secret=SECRET,
        )  # fmt: skip
    # Then MJML, html2text and the Jinja compiler ran once, for the one version
    assert (library.cache.compiles, library.cache.hits) == (1, 99)
