"""Sample values of the template variables (engine.rules.template_variables), for previews
and for the renders that `mobilise validate` makes of each template."""

from __future__ import annotations

from engine.rules.template_variables import CATALOGUE


def sample_context() -> dict[str, object]:
    """Every catalogued variable with its sample value."""
    return {name: variable.sample for name, variable in CATALOGUE.items()}


def sparse_context() -> dict[str, object]:
    """Every catalogued variable as for a supporter we know little about."""
    return {name: variable.sparse_value for name, variable in CATALOGUE.items()}
