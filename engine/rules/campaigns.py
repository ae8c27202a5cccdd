"""A campaign file (`journeys/*.yaml`): one petition, its milestones and consents, its journeys."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

MAX_CONSENT_PURPOSES = 4
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConsentPurpose(Strict):
    """What the supporter ticked: the wording's version is stored with each consent."""

    version: str = Field(min_length=1, max_length=40)
    wording: str = Field(min_length=1)


class PetitionDef(Strict):
    slug: str
    title: str = Field(min_length=1, max_length=300)
    # What the petition page says above the form: paragraphs separated by blank lines,
    # lines starting with "- " as a list (engine/api/public.py).
    text: str = Field(default="", max_length=20_000)
    milestones: list[int] = Field(default_factory=list)
    consents: dict[str, ConsentPurpose] = Field(default_factory=dict)
    # Double opt-in (docs/journeys.md): a web signature waits for its address to be
    # confirmed before it grants consents and enters journeys; it counts towards the total
    # and the milestones before then only with `count_unconfirmed`.
    double_opt_in: bool = False
    count_unconfirmed: bool = False

    @field_validator("count_unconfirmed")
    @classmethod
    def _counted(cls, value: bool, info: ValidationInfo) -> bool:
        if value and not info.data.get("double_opt_in", False):
            raise ValueError("count_unconfirmed needs double_opt_in: true")
        return value

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG.match(value):
            raise ValueError("use lower-case letters, digits and hyphens, e.g. stop-surveillance")
        return value

    @field_validator("consents")
    @classmethod
    def _consents(cls, value: dict[str, ConsentPurpose]) -> dict[str, ConsentPurpose]:
        if len(value) > MAX_CONSENT_PURPOSES:
            raise ValueError(f"at most {MAX_CONSENT_PURPOSES} consent purposes per petition")
        for purpose in value:
            if not SLUG.match(purpose.replace("_", "-")):
                raise ValueError(f"consent purpose '{purpose}': use lower-case letters")
        return value

    @field_validator("milestones")
    @classmethod
    def _milestones(cls, value: list[int]) -> list[int]:
        if any(v <= 0 for v in value):
            raise ValueError("milestones are positive signature counts")
        if len(set(value)) != len(value):
            raise ValueError("a milestone is listed twice")
        return sorted(value)


class CampaignDef(Strict):
    campaign: str
    timezone: str = "Europe/Paris"
    petition: PetitionDef
    # Journeys are parsed and validated by engine.rules.journeys.
    journeys: list[dict[str, Any]] = Field(default_factory=list)
