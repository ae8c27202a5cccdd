"""The template variables: the one declared list that validation, rendering, the dispatch
and the docs read.

`mobilise validate` refuses a template using a name outside it (the engine could not fill
it in), and a journey step whose template needs what the step cannot be given. The
dispatch (`engine.send.compose`) gives every journey email the variables `given` to
"everyone" and "donors"; previews and template validation render with `sample` and
`sparse`. The renderer adds `subject`, `preheader`, `unsubscribe_url` and `tax_reduction`
itself (`engine.render.sandbox.PROVIDED`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

_SAME = object()


@dataclass(frozen=True)
class Variable:
    name: str
    description: str
    sample: object
    # Its value for a supporter we know little about (no name, never gave): templates
    # must render with it too. `_SAME`: the engine always knows this one.
    sparse: object = _SAME
    # Who the dispatch gives it to: every journey email; every journey email, but it only
    # says something of donors (`validate` accepts it only in steps that donors alone
    # reach); or only the double opt-in confirmation (the `confirm` template, which the
    # engine sends itself: no journey step may use it).
    given: Literal["everyone", "donors", "confirmation"] = "everyone"

    @property
    def sparse_value(self) -> object:
        return self.sample if self.sparse is _SAME else self.sparse


CATALOGUE: dict[str, Variable] = {
    v.name: v
    for v in (
        Variable("first_name", "the supporter's first name, '' when unknown", "Camille", ""),
        Variable("last_name", "the supporter's last name, '' when unknown", "Martin", ""),
        Variable(
            "petition_title",
            "the petition's title",
            "Interdire la reconnaissance faciale en France",
        ),
        Variable("signature_count", "the petition's live signature count (int)", 140_213),
        Variable(
            "milestone",
            "the milestone just reached (int); None when an update goes out on a timeout",
            140_000,
            None,
        ),
        Variable(
            "last_gift",
            "the supporter's last gift in euros (Decimal), None if never: a one-off gift or"
            " the amount of a monthly gift, whichever was paid last",
            Decimal("20"),
            None,
            given="donors",
        ),
        Variable(
            "last_gift_monthly",
            "True when the last gift is a monthly gift still in force (`last_gift` is then a"
            " month's amount)",
            False,
            False,
            given="donors",
        ),
        Variable(
            "confirm_url",
            "the signed double opt-in link (`/confirm/{token}`, never tracked), given to the"
            " `confirm` email only, which the engine sends to a new signer of a petition with"
            " `double_opt_in`; no journey step has it",
            "https://www.example.org/confirmer/exemple",
            given="confirmation",
        ),
    )
}

# What the dispatch gives every journey email, and what only says something of donors.
GIVEN_TO_EVERYONE = frozenset(n for n, v in CATALOGUE.items() if v.given == "everyone")
GIVEN_FOR_DONORS = frozenset(n for n, v in CATALOGUE.items() if v.given == "donors")
JOURNEY_EMAIL = GIVEN_TO_EVERYONE | GIVEN_FOR_DONORS
# The double opt-in confirmation is given what a journey email is, and its link.
CONFIRMATION_EMAIL = JOURNEY_EMAIL | {n for n, v in CATALOGUE.items() if v.given == "confirmation"}
