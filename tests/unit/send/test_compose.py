"""What the dispatch gives a template is the declared list of journey email variables."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from engine.render import tokens
from engine.rules import optin
from engine.rules.template_variables import CONFIRMATION_EMAIL, JOURNEY_EMAIL
from engine.send import compose
from engine.send.compose import Envelope
from engine.send.transport import Address
from engine.store.claims import Claimed
from engine.store.recipients import Confirmation, LastGift, Person, PetitionFacts, Recipients

ROW = Claimed(1, 2, "thanked", 3, "j", 4, "thanked", None, True, 1)
PERSON = Person(3, "camille@example.org", "Camille", "", restricted=False, erased=False)


@pytest.mark.parametrize("gave", [True, False])
def test_a_recipient_fills_in_every_journey_email_variable_and_no_other(gave: bool) -> None:
    # Given a recipient who gave or not, of a petition with a milestone reached
    facts = Recipients(
        people={3: PERSON},
        petitions={4: PetitionFacts("Une pétition", 140_213, 140_000)},
        last_gift={3: LastGift(Decimal("20"), monthly=False)} if gave else {},
    )
    # When the dispatch builds the template's context
    context = compose.context(ROW, PERSON, facts)
    # Then it holds exactly the declared variables (engine.rules.template_variables)
    assert set(context) == JOURNEY_EMAIL
    assert context["last_gift"] == (Decimal("20") if gave else None)


def test_a_confirmation_email_gets_the_journey_variables_and_its_signed_link() -> None:
    # Given the confirmation email of pending signature 9, which expires in a week
    expires = datetime(2026, 5, 20, tzinfo=UTC)
    row = ROW._replace(enrolment_id=optin.outbox_key(9)[0], step_id=optin.STEP)
    facts = Recipients(
        people={3: PERSON},
        confirmations={9: Confirmation(PetitionFacts("Une pétition", 12, None), expires, False)},
    )
    env = Envelope(Address("c@example.org", "C"), base_url="https://m.example.org", secret="s")
    # When the dispatch builds its context
    context = compose.context(row, PERSON, facts, env)
    # Then it holds the declared variables of a confirmation, its link naming signature 9
    assert set(context) == CONFIRMATION_EMAIL
    assert context["petition_title"] == "Une pétition"
    token = context["confirm_url"].removeprefix("https://m.example.org/confirm/")
    assert tokens.read_confirm_token("s", token, datetime(2026, 5, 19, tzinfo=UTC)) == 9
