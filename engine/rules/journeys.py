"""The journey language: the `journeys:` section of a campaign file, as frozen models.

A journey is a trigger, an ordered list of steps and journey-wide policies (goal, exit on
unsubscribe, re-entry, frequency cap, quiet hours, send window). Steps run in list order
unless `next` (or a branch, or a timeout) says otherwise; `exit` as a target ends the
journey as completed.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, time, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from engine.rules.conditions import Condition
from engine.rules.durations import parse_duration

STEP_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
EXIT = "exit"  # a reserved target: leave the journey as completed
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _duration(value: str) -> str:
    parse_duration(value)
    return value


# --- triggers: what enrols a supporter


class SignedTrigger(Strict):
    signed: str


class MilestoneSpec(Strict):
    petition: str
    threshold: int = Field(gt=0)


class MilestoneTrigger(Strict):
    milestone: MilestoneSpec


class DonatedTrigger(Strict):
    donated: Literal[True]


class ClickSpec(Strict):
    journey: str
    step: str


class ClickedTrigger(Strict):
    clicked: ClickSpec


class SegmentTrigger(Strict):
    entered_segment: str


def _key_tag(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return next(iter(type(value).model_fields))
    if isinstance(value, dict):
        known = [k for k in value if k in _TRIGGER_KINDS]
        return str(known[0]) if len(known) == 1 else None
    return None


_TRIGGER_KINDS = ("signed", "milestone", "donated", "clicked", "entered_segment")
Trigger = Annotated[
    Annotated[SignedTrigger, Tag("signed")]
    | Annotated[MilestoneTrigger, Tag("milestone")]
    | Annotated[DonatedTrigger, Tag("donated")]
    | Annotated[ClickedTrigger, Tag("clicked")]
    | Annotated[SegmentTrigger, Tag("entered_segment")],
    Discriminator(
        _key_tag,
        custom_error_type="trigger",
        custom_error_message="a trigger is one of: signed, milestone, donated, clicked, "
        "entered_segment",
    ),
]


# --- steps


class Variant(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,20}$")
    template: str
    weight: int = Field(default=1, ge=1, le=1000)


class SendSpec(Strict):
    template: str | None = None
    variants: list[Variant] = Field(default_factory=list)
    # Consent purpose the supporter must have granted; transactional emails need none.
    consent: str | None = None
    transactional: bool = False
    # Only for people who signed the journey's petition within this long (e.g. `30d`):
    # a file of old signers imported with --enrol is not thanked years late. Older signers
    # skip the email (suppressed, reason `signed-too-long-ago`) and move on.
    max_signature_age: str | None = None

    @field_validator("max_signature_age")
    @classmethod
    def _age(cls, value: str | None) -> str | None:
        return _duration(value) if value is not None else None

    @model_validator(mode="after")
    def _one_source(self) -> SendSpec:
        if (self.template is None) == (not self.variants):
            raise ValueError("give either `template` or `variants`, not both or neither")
        if len({v.name for v in self.variants}) != len(self.variants):
            raise ValueError("variant names must be unique")
        return self

    def templates(self) -> list[str]:
        return [self.template] if self.template else [v.template for v in self.variants]


class StepBase(Strict):
    id: str
    next: str | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not STEP_ID.match(value) or value == EXIT:
            raise ValueError(
                "step ids use lower-case letters, digits and hyphens; `exit` is reserved"
            )
        return value


class SendStep(StepBase):
    send: SendSpec


class WaitStep(StepBase):
    wait: str

    @field_validator("wait")
    @classmethod
    def _wait(cls, value: str) -> str:
        return _duration(value)


class UntilSpec(Strict):
    """Wait until one of: a milestone, an event kind (after entering the step), a date."""

    milestone: int | None = Field(default=None, gt=0)
    petition: str | None = None  # default: the petition of the campaign file
    event: str | None = None
    date: datetime | None = None
    timeout: str | None = None
    # What happens at the timeout: `next` (carry on), `exit`, or a step id.
    on_timeout: str = "next"

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: str | None) -> str | None:
        return _duration(value) if value is not None else None

    @model_validator(mode="after")
    def _one_target(self) -> UntilSpec:
        given = [x for x in (self.milestone, self.event, self.date) if x is not None]
        if len(given) != 1:
            raise ValueError("wait for exactly one of `milestone`, `event` or `date`")
        if self.date is not None and self.date.tzinfo is None:
            raise ValueError("give the date with its offset, e.g. 2026-06-01T09:00:00+02:00")
        if self.date is None and self.timeout is None:
            raise ValueError("a wait for a milestone or an event needs a `timeout`")
        return self


class WaitUntilStep(StepBase):
    wait_until: UntilSpec


class Case(Strict):
    when: Condition = Field(alias="if")
    goto: str


class BranchSpec(Strict):
    cases: list[Case] = Field(min_length=1)
    otherwise: str = Field(alias="else")


class BranchStep(StepBase):
    branch: BranchSpec


class ExitStep(StepBase):
    exit: str = Field(default="completed", pattern=r"^[a-z0-9-]{1,40}$")


_STEP_KINDS = ("send", "wait", "wait_until", "branch", "exit")


def _step_tag(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return next((k for k in _STEP_KINDS if k in type(value).model_fields), None)
    if isinstance(value, dict):
        known = [k for k in value if k in _STEP_KINDS]
        return str(known[0]) if len(known) == 1 else None
    return None


Step = Annotated[
    Annotated[SendStep, Tag("send")]
    | Annotated[WaitStep, Tag("wait")]
    | Annotated[WaitUntilStep, Tag("wait_until")]
    | Annotated[BranchStep, Tag("branch")]
    | Annotated[ExitStep, Tag("exit")],
    Discriminator(
        _step_tag,
        custom_error_type="step",
        custom_error_message="a step has an `id` and exactly one of: send, wait, wait_until, "
        "branch, exit",
    ),
]


# --- journey-wide policies


class FrequencyCap(Strict):
    """At most `max` campaign emails per `per`, counted across every journey."""

    max: int = Field(default=1, ge=1, le=100)
    per: str = "48h"

    @field_validator("per")
    @classmethod
    def _per(cls, value: str) -> str:
        return _duration(value)

    @property
    def period(self) -> timedelta:
        return parse_duration(self.per)


class Hours(Strict):
    """A daily interval in the campaign's time zone; `start` > `end` wraps past midnight."""

    start: time
    end: time

    @model_validator(mode="after")
    def _not_empty(self) -> Hours:
        if self.start == self.end:
            raise ValueError("start and end are equal: the interval is empty")
        return self


class SendWindow(Hours):
    days: list[Day] = Field(default_factory=lambda: list(DAYS), min_length=1)


class Journey(Strict):
    id: str = Field(pattern=STEP_ID.pattern)
    title: str = ""
    trigger: Trigger
    goal: Condition | None = None
    exit_on_unsubscribe: bool = True
    reentry: Literal["never", "after_exit"] = "never"
    frequency_cap: FrequencyCap | None = None
    quiet_hours: Hours | None = None
    send_window: SendWindow | None = None
    # Old step id -> new step id, declared when a new version removes a step people are on.
    migrate: dict[str, str] = Field(default_factory=dict)
    steps: list[Step] = Field(min_length=1)

    def step(self, step_id: str) -> Step:
        return self.by_id()[step_id]

    def by_id(self) -> dict[str, Step]:
        return {s.id: s for s in self.steps}

    def successor(self, step_id: str) -> str:
        """Where a step goes once done: its `next`, else the following step, else exit."""
        ids = [s.id for s in self.steps]
        step = self.step(step_id)
        if step.next is not None:
            return step.next
        index = ids.index(step_id)
        return ids[index + 1] if index + 1 < len(ids) else EXIT

    def targets(self, step_id: str) -> list[str]:
        """Every step (or `exit`) this step can lead to: the edges of the journey graph."""
        return [target for target, _key in self.edges(step_id)]

    def edges(self, step_id: str) -> list[tuple[str, tuple[int | str, ...]]]:
        """`targets`, each with the path in the step of the key that names it (`next`,
        `branch.cases.0.goto`, `branch.else`, `wait_until.on_timeout`); `()` for the
        step that follows by default."""
        step = self.step(step_id)
        if isinstance(step, ExitStep):
            return []
        if isinstance(step, BranchStep):
            cases = step.branch.cases
            return [(c.goto, ("branch", "cases", i, "goto")) for i, c in enumerate(cases)] + [
                (step.branch.otherwise, ("branch", "else"))
            ]
        found: list[tuple[str, tuple[int | str, ...]]] = [
            (self.successor(step_id), ("next",) if step.next is not None else ())
        ]
        if isinstance(step, WaitUntilStep) and step.wait_until.on_timeout != "next":
            found.append((step.wait_until.on_timeout, ("wait_until", "on_timeout")))
        return found

    def content_hash(self) -> str:
        """Stable across key order and formatting: what `sync` compares between versions."""
        canonical = json.dumps(self.as_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return data
