"""The organisation file (`organisation.yaml`): who signs the emails and the public pages.

Name, postal address, sender, reply-to, donation page and privacy contact are declared
once; templates read them as `{{ organisation.<key> }}` (engine/render/site.py), the
envelope takes the sender and reply-to, the petition page its GDPR notice.

Pure: parses text and finds the placeholders left from the example (addresses at
example.org, example.com or example.net, the word "Exemple"). `mobilise validate` warns
about them; production refuses to start with any (docs/templates.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.errors import Problem
from engine.rules.supporters import parse_email
from engine.rules.yaml_lines import load_model, locate

FILE = "organisation.yaml"
# Hosts reserved for examples (RFC 2606), and the word a placeholder address carries.
_EXAMPLE_HOST = re.compile(
    r"(?:^|[@/.])(?:example\.(?:org|com|net)|[a-z0-9-]+\.example)(?=$|[/:?#>\"'\s])",
    re.IGNORECASE,
)
_EXAMPLE_WORD = re.compile(r"\bexemple\b", re.IGNORECASE)


def placeholder(text: str) -> str | None:
    """Why `text` looks like a value left from the example, or None."""
    if _EXAMPLE_HOST.search(text):
        return "an address reserved for examples"
    if _EXAMPLE_WORD.search(text):
        return "the word « Exemple »"
    return None


def _one_line(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError("one line only")
    if "{" in value or "}" in value:
        # Values are written into templates before Jinja reads them.
        raise ValueError("braces { } are not allowed")
    return value.strip()


def _url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("https://", "http://")):
        raise ValueError("an absolute http(s) URL, e.g. https://www.example.net/dons")
    return value


def _email(value: str | None) -> str | None:
    return parse_email(value) if value is not None else None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _text(cls, value: object) -> object:
        return _one_line(value) if isinstance(value, str) else value


class Sender(_Strict):
    name: str = Field(min_length=1, max_length=100)
    email: str

    @field_validator("email")
    @classmethod
    def _address(cls, value: str) -> str | None:
        return _email(value)


class Privacy(_Strict):
    """Where supporters exercise their rights; shown by every form and email footer."""

    contact: str  # an email address
    policy_url: str | None = None
    # How long data is kept, as a phrase ("trois ans après votre dernière action").
    retention: str | None = Field(default=None, max_length=300)

    @field_validator("contact")
    @classmethod
    def _address(cls, value: str) -> str | None:
        return _email(value)

    @field_validator("policy_url")
    @classmethod
    def _policy(cls, value: str | None) -> str | None:
        return _url(value)


class OrganisationDef(_Strict):
    name: str = Field(min_length=1, max_length=200)
    legal_form: str | None = Field(default=None, max_length=200)
    address: str = Field(min_length=1, max_length=300)
    website: str | None = None
    sender: Sender
    reply_to: str | None = None
    donation_url: str | None = None
    privacy: Privacy
    # A file Mobilise serves (`/static/...`) or an absolute URL.
    logo: str | None = None
    # Seconds after which the thank-you page opens the donation page; None: never.
    donation_redirect_seconds: int | None = Field(default=None, ge=3, le=600)

    @field_validator("website", "donation_url")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        return _url(value)

    @field_validator("reply_to")
    @classmethod
    def _reply(cls, value: str | None) -> str | None:
        return _email(value)

    def flat(self) -> dict[str, str]:
        """Every set value by its dotted key (`sender.email`), as templates name them."""
        return dict(_flatten(self.model_dump(exclude_none=True)))


def _flatten(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for key, value in data.items():
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", str(value)


KEYS = tuple(
    [f"sender.{k}" for k in Sender.model_fields]
    + [f"privacy.{k}" for k in Privacy.model_fields]
    + [k for k in OrganisationDef.model_fields if k not in {"sender", "privacy"}]
)


def parse_organisation(text: str, name: str) -> tuple[OrganisationDef | None, list[Problem]]:
    organisation, _node, problems = load_model(text, name, OrganisationDef)
    return organisation, problems


def placeholders(
    organisation: OrganisationDef, text: str, name: str, *, overridden: frozenset[str] = frozenset()
) -> list[Problem]:
    """A warning for each value still left from the example (`overridden` keys excepted:
    the environment replaces them), at its line in `text`."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        node = None
    found = []
    for key, value in organisation.flat().items():
        why = placeholder(value)
        if why is None or key in overridden:
            continue
        found.append(
            Problem(
                f"{key} {value!r} is a placeholder ({why})",
                file=name,
                line=locate(node, key.split(".")),
                field=key,
                hint="put your organisation's own; production refuses to start with placeholders",
            )
        )
    return found
