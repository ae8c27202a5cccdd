"""What the dispatch gives a template is the declared list of journey email variables."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.rules.template_variables import JOURNEY_EMAIL
from engine.send import compose
from engine.store.claims import Claimed
from engine.store.recipients import LastGift, Person, PetitionFacts, Recipients

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
