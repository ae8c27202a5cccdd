"""A claimed outbox row, rendered for its recipient and wrapped for any transport."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.config import Secret
from engine.render import tokens
from engine.render.compiled import CompiledTemplate
from engine.rules import optin
from engine.send.transport import Address, OutgoingMessage
from engine.store import recipients
from engine.store.claims import Claimed
from engine.store.recipients import Person, PetitionFacts, Recipients


@dataclass(frozen=True)
class Envelope:
    """What every message of an installation shares."""

    sender: Address
    base_url: str
    secret: Secret
    reply_to: Address | None = None


def context(
    row: Claimed, person: Person, facts: Recipients, env: Envelope | None = None
) -> dict[str, Any]:
    """What this recipient gives the template: the variables of a journey email
    (engine.rules.template_variables.JOURNEY_EMAIL); for a double opt-in confirmation
    (CONFIRMATION_EMAIL), those and its signed link, made with `env`."""
    pending = optin.pending_of(row.enrolment_id)
    if pending is not None:
        assert env is not None
        confirmation = facts.confirmations[pending]
        token = tokens.confirm_token(env.secret, pending, confirmation.expires_at)
        return {
            **_given(person, confirmation.petition, facts, row.supporter_id),
            "confirm_url": f"{env.base_url}/confirm/{token}",
        }
    return _given(person, facts.petitions.get(row.journey_version_id), facts, row.supporter_id)


def _given(
    person: Person, petition: PetitionFacts | None, facts: Recipients, supporter_id: int
) -> dict[str, Any]:
    return {
        "first_name": person.first_name,
        "last_name": person.last_name,
        "petition_title": petition.title if petition else "",
        "signature_count": petition.signature_count if petition else 0,
        "milestone": petition.milestone if petition else None,
        **recipients.gift_variables(facts, supporter_id),
    }


def message(
    row: Claimed,
    person: Person,
    facts: Recipients,
    compiled: CompiledTemplate,
    env: Envelope,
    *,
    skeleton: bool = False,
) -> OutgoingMessage:
    """Raises jinja2 errors when the template needs what the engine cannot give.

    With `skeleton`, for transports that substitute (SendGrid), the content is shared
    with the other recipients of the same render shape and this recipient's values
    ride as substitutions (engine.render.skeletons).
    """
    assert person.email is not None
    render = compiled.render_skeleton if skeleton else compiled.render
    email = render(
        context(row, person, facts, env),
        message_id=row.id,
        journey=row.journey_id,
        step=row.step_id,
        base_url=env.base_url,
        secret=env.secret,
    )
    name = " ".join(part for part in (person.first_name, person.last_name) if part)
    return OutgoingMessage(
        message_id=str(row.id),
        to=Address(person.email, name),
        sender=env.sender,
        reply_to=env.reply_to,
        subject=email.subject,
        html=email.html,
        text=email.text,
        headers=email.headers,
        categories=(f"journey:{row.journey_id}", f"step:{row.step_id}"),
        # Opaque ids only: SendGrid keeps custom_args with its event data.
        custom_args={"mobilise_journey": row.journey_id, "mobilise_step": row.step_id},
        template_version=compiled.version,
        variant=row.variant or "",
        substitutions=email.substitutions,
    )
