"""The variables templates may use, what they mean, and sample values for previews.

A template using a name outside this catalogue is refused by `mobilise validate`:
the engine could not fill it in. Journey validation compares a step's template
variables (`CompiledTemplate.variables`) with what the step can provide.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

_SAME = object()


@dataclass(frozen=True)
class Variable:
    name: str
    description: str
    sample: object
    # Its value for a supporter we know little about (no name, never gave): templates
    # must render with it too. `_SAME`: the engine always knows this one.
    sparse: object = _SAME


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
        ),
        Variable(
            "last_gift_monthly",
            "True when the last gift is a monthly gift still in force (`last_gift` is then a"
            " month's amount)",
            False,
            False,
        ),
        Variable(
            "confirm_url",
            "signed double opt-in confirmation URL, made by the engine (never tracked)",
            "https://www.example.org/confirmer/exemple",
        ),
    )
}


def sample_context() -> dict[str, object]:
    """Every catalogued variable with its sample value."""
    return {name: variable.sample for name, variable in CATALOGUE.items()}


def sparse_context() -> dict[str, object]:
    """Every catalogued variable as for a supporter we know little about."""
    return {
        name: variable.sample if variable.sparse is _SAME else variable.sparse
        for name, variable in CATALOGUE.items()
    }
