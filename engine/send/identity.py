"""Who sends: the organisation file with the environment's overrides, as every process
sees it (envelope, templates, public pages), and production's refusal of placeholders.

MOBILISE_FROM_EMAIL, MOBILISE_FROM_NAME and MOBILISE_DONATION_URL, when set, replace the
file's sender and donation page: an installation can keep the campaign files of a
repository and send as itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from engine import declarations
from engine.config import Settings
from engine.errors import Invalid, Problem
from engine.render.site import Site
from engine.render.template_checks import site_warnings
from engine.rules.organisation import FILE, OrganisationDef, placeholders
from engine.send.transport import Address

# The organisation's key each override replaces, by setting.
OVERRIDES = {
    "from_email": "sender.email",
    "from_name": "sender.name",
    "donation_url": "donation_url",
}
# Who signs when there is no organisation file and no override: a placeholder, which
# validate reports and production refuses.
_NOBODY = Address("mobilise@example.org", "Mobilise")


@dataclass(frozen=True)
class Identity:
    organisation: OrganisationDef | None
    site: Site
    sender: Address
    reply_to: Address | None
    # Where the ask buttons' clicks lead (engine/api/tracking.py); None: nowhere yet.
    donation_url: str | None
    # Values left from the example, in organisation.yaml and in the templates.
    placeholders: list[Problem]
    # Images of the templates that will not load, or that validate cannot check.
    images: list[Problem]


def templates_dir(settings: Settings) -> Path:
    return settings.project_dir / "templates" / "email"


def identity(settings: Settings) -> Identity:
    """The installation's identity; Invalid if organisation.yaml or an override is wrong."""
    found, problems = declarations.read_organisation(settings.project_dir)
    if problems:
        raise Invalid("organisation.yaml has problems", problems=problems)
    overrides = {
        key: value for setting, key in OVERRIDES.items() if (value := getattr(settings, setting))
    }
    organisation = _overridden(found.definition, overrides) if found is not None else None
    site = Site.of(
        organisation,
        base_url=settings.base_url,
        asset_url=settings.asset_url,
        static_dir=settings.project_dir / "static",
    )
    warnings = site_warnings(templates_dir(settings), site)
    if found is None or organisation is None:
        missing = Problem(
            f"no {FILE}: emails go out as {_NOBODY.name} <{_NOBODY.email}>",
            file=str(settings.project_dir / FILE),
            hint="declare your organisation (docs/templates.md)",
        )
        sender = Address(settings.from_email or _NOBODY.email, settings.from_name or _NOBODY.name)
        donation = settings.donation_url or None
        placeholders_found = [missing, *warnings.placeholders]
        return Identity(None, site, sender, None, donation, placeholders_found, warnings.images)
    found_placeholders = placeholders(
        organisation, found.text, found.path, overridden=frozenset(overrides)
    )
    return Identity(
        organisation,
        site,
        Address(organisation.sender.email, organisation.sender.name),
        Address(organisation.reply_to) if organisation.reply_to else None,
        organisation.donation_url,
        [*found_placeholders, *warnings.placeholders],
        warnings.images,
    )


def _overridden(definition: OrganisationDef, overrides: dict[str, str]) -> OrganisationDef:
    data = definition.model_dump(exclude_none=True)
    for key, value in overrides.items():
        *parents, last = key.split(".")
        target = data
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    try:
        return OrganisationDef.model_validate(data)
    except ValidationError as exc:
        setting = {key: f"MOBILISE_{name.upper()}" for name, key in OVERRIDES.items()}
        raise Invalid(
            "an override of organisation.yaml is invalid",
            problems=[
                Problem(
                    f"{setting.get(key, key)}: {error['msg']}",
                    field=setting.get(key, key),
                )
                for error in exc.errors()
                if (key := ".".join(str(p) for p in error["loc"]))
            ],
        ) from None


def for_sending(settings: Settings) -> Identity:
    """`identity`, refused in production while a placeholder remains: a supporter must
    never receive an email signed by an example organisation."""
    found = identity(settings)
    if settings.env == "production" and found.placeholders:
        raise Invalid(
            "production refuses to start: placeholders remain in organisation.yaml or the"
            " templates",
            problems=found.placeholders,
            hint="replace them (see `mobilise validate`), or unset MOBILISE_ENV=production",
        )
    return found
