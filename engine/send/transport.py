"""What every transport takes and gives back: messages in, one result per message out.

`Transport` is the edge the dispatcher talks to; `MemoryTransport` is its in-memory twin
for tests. The other implementations live beside this module
(`files.py`, `smtp.py`, `sendgrid_api.py`).

A message may be a *skeleton*: `subject`, `html` and `text` shared by a whole template
version and variant, with `substitutions` holding this recipient's values. SendGrid sends
one copy of the skeleton per request and the substitutions per personalisation; the
other transports apply them locally (`OutgoingMessage.rendered()`). A fully rendered
message simply has no substitutions, and SendGrid's transport sends it in a request of
its own unless other messages have the very same content.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import ClassVar, Literal, Protocol, TypeVar

from engine.errors import Invalid

# Opaque ids only: SendGrid keeps custom_args, and file names come from message ids.
_OPAQUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}")
# Headers the providers own or that the transport writes from the message's own fields.
RESERVED_HEADERS = frozenset(
    h.lower()
    for h in (
        "To",
        "From",
        "Subject",
        "Reply-To",
        "Cc",
        "Bcc",
        "Date",
        "Message-ID",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
        "X-SG-ID",
        "X-SG-EID",
        "Received",
        "DKIM-Signature",
    )
)
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 ftext: printable ASCII except ':'


T = TypeVar("T")


def is_opaque_id(value: str) -> bool:
    return _OPAQUE.fullmatch(value) is not None


def _opaque_pair(pair: tuple[str, str]) -> bool:
    return is_opaque_id(pair[0]) and is_opaque_id(pair[1])


def _settable(name: str) -> bool:
    return _HEADER_NAME.fullmatch(name) is not None and name.lower() not in RESERVED_HEADERS


# What passed the checks above: a bulk send repeats the same few header names and
# custom_args (journey and step ids) for every message. Bounded: cleared when full.
_HEADER_NAMES: set[str] = set()
_OPAQUE_PAIRS: set[tuple[str, str]] = set()
_REMEMBERED = 4096


def _remember(cache: set[T], item: T, check: Callable[[T], bool]) -> bool:
    """Whether `item` passes `check`; remembered when it does."""
    if not check(item):
        return False
    if len(cache) >= _REMEMBERED:
        cache.clear()
    cache.add(item)
    return True


@dataclass(frozen=True, slots=True)
class Address:
    email: str
    name: str = ""


@dataclass(frozen=True)
class OutgoingMessage:
    """One email to one recipient, ready for any transport.

    `message_id` is Mobilise's own opaque id (the outbox key): it names the `.eml` file,
    travels in SendGrid `custom_args` as `mobilise_message_id`, and comes back in events.
    """

    message_id: str
    to: Address
    sender: Address
    subject: str
    html: str
    text: str
    headers: Mapping[str, str] = field(default_factory=dict)
    categories: tuple[str, ...] = ()
    custom_args: Mapping[str, str] = field(default_factory=dict)
    template_version: str = ""
    variant: str = ""
    send_at: datetime | None = None
    substitutions: Mapping[str, str] = field(default_factory=dict)
    reply_to: Address | None = None
    # Plain dicts as they go on the wire, built once (a 1,000-recipient request reads them
    # a thousand times): headers, custom_args, substitutions.
    _wire: tuple[dict[str, str], dict[str, str], dict[str, str]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        headers, custom_args = dict(self.headers), dict(self.custom_args)
        substitutions = dict(self.substitutions)
        # Read-only views: a message handed to a transport cannot change under it.
        object.__setattr__(self, "headers", MappingProxyType(headers))
        object.__setattr__(self, "custom_args", MappingProxyType(custom_args))
        object.__setattr__(self, "substitutions", MappingProxyType(substitutions))
        wire_headers = dict(headers)
        if "X-Mobilise-Message" not in headers and not any(
            name.lower() == "x-mobilise-message" for name in headers
        ):
            # Every email names its message (DESIGN.md), whatever built it.
            wire_headers["X-Mobilise-Message"] = self.message_id
        wire_args = {**custom_args, "mobilise_message_id": self.message_id}
        object.__setattr__(self, "_wire", (wire_headers, wire_args, substitutions))
        if not is_opaque_id(self.message_id):
            raise Invalid(
                f"message id {self.message_id!r} is not an opaque id",
                field="message_id",
                hint="letters, digits and _ . : - only, at most 128 characters",
            )
        for pair in custom_args.items():
            if pair not in _OPAQUE_PAIRS and not _remember(_OPAQUE_PAIRS, pair, _opaque_pair):
                key = pair[0]
                raise Invalid(
                    f"custom_args {key!r} must map an opaque key to an opaque id",
                    field="custom_args",
                    hint="SendGrid stores custom_args: never put an address or a name there",
                )
        for name, value in headers.items():
            if name not in _HEADER_NAMES and not _remember(_HEADER_NAMES, name, _settable):
                raise Invalid(f"header {name!r} cannot be set by a message", field="headers")
            if "\r" in value or "\n" in value:
                raise Invalid(f"header {name!r} contains a line break", field="headers")
        if self.send_at is not None and self.send_at.tzinfo is None:
            raise Invalid("send_at must carry a time zone", field="send_at")

    # The wire dicts are shared, not copied: read them, never change them.

    @property
    def all_headers(self) -> dict[str, str]:
        """The headers as sent, `X-Mobilise-Message` included."""
        return self._wire[0]

    @property
    def all_custom_args(self) -> dict[str, str]:
        """The custom_args as sent: the message id always rides along."""
        return self._wire[1]

    @property
    def wire_substitutions(self) -> dict[str, str]:
        return self._wire[2]

    def with_content(
        self, subject: str, html: str, text: str, substitutions: Mapping[str, str]
    ) -> OutgoingMessage:
        """The same message with other content (no re-validation: ids and headers stay)."""
        twin = object.__new__(OutgoingMessage)
        twin.__dict__.update(self.__dict__)
        wire = dict(substitutions)
        object.__setattr__(twin, "subject", subject)
        object.__setattr__(twin, "html", html)
        object.__setattr__(twin, "text", text)
        object.__setattr__(twin, "substitutions", MappingProxyType(wire))
        object.__setattr__(twin, "_wire", (self._wire[0], self._wire[1], wire))
        return twin

    def rendered(self) -> tuple[str, str, str]:
        """Subject, html and text with this recipient's substitutions applied."""
        return (
            apply_substitutions(self.subject, self.substitutions),
            apply_substitutions(self.html, self.substitutions),
            apply_substitutions(self.text, self.substitutions),
        )


def apply_substitutions(template: str, substitutions: Mapping[str, str]) -> str:
    """Replace each tag by its value in one pass, longest tag first, as plain text.

    One pass: a value that happens to contain a tag (a supporter named `-click_url-`)
    is left as written. Tags should be delimited (`-first_name-`). No escaping: the
    renderer gives HTML-escaped values under their own tags.
    """
    if not substitutions:
        return template
    tags = sorted(substitutions, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(tag) for tag in tags))
    return pattern.sub(lambda found: substitutions[found.group(0)], template)


# Results: exactly one per message, in the order the messages were given.


@dataclass(frozen=True, slots=True)
class Accepted:
    """The provider took the message; `provider_id` links later events to it."""

    state: ClassVar[Literal["accepted"]] = "accepted"
    message_id: str
    provider_id: str


@dataclass(frozen=True, slots=True)
class Transient:
    """Not sent; safe to try again, not before `retry_after` when the provider says so.

    `attempted` is False when the transport never offered this message to the provider
    (an earlier request of the batch stopped it), so the retry does not count as one.
    """

    state: ClassVar[Literal["transient"]] = "transient"
    message_id: str
    reason: str
    retry_after: datetime | None = None
    attempted: bool = True


@dataclass(frozen=True, slots=True)
class Permanent:
    """Refused for good (bad address, refused content): record the reason, never retry."""

    state: ClassVar[Literal["permanent"]] = "permanent"
    message_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Ambiguous:
    """The request left and no answer came back: the provider may or may not have it.

    Do not resend blindly: wait for `processed` events carrying the message id and resend
    only the messages that never show up (docs/operations.md).
    """

    state: ClassVar[Literal["ambiguous"]] = "ambiguous"
    message_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class AuthFailed:
    """The provider refused our credentials: stop sending and alert an operator.

    The message was not sent and stays queued; retrying would only burn the queue.
    """

    state: ClassVar[Literal["auth_failed"]] = "auth_failed"
    message_id: str
    reason: str


SendResult = Accepted | Transient | Permanent | Ambiguous | AuthFailed


class Transport(Protocol):
    """Sends a batch; never raises for a provider's answer, returns it per message."""

    name: str
    # The batch size the dispatcher should claim for this transport.
    batch_size: int
    # Whether the provider applies `substitutions` itself (then the dispatcher hands it
    # skeletons shared by many recipients); otherwise messages come fully rendered.
    substitutes: bool

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]: ...


@dataclass
class MemoryTransport:
    """Keeps what it is given; scripted failures let tests exercise the dispatcher.

    `outcomes` maps a message id to the result to return instead of accepting it.
    """

    name: str = "memory"
    batch_size: int = 1000
    substitutes: bool = False
    sent: list[OutgoingMessage] = field(default_factory=list)
    outcomes: dict[str, SendResult] = field(default_factory=dict)

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        results: list[SendResult] = []
        for message in messages:
            scripted = self.outcomes.get(message.message_id)
            if scripted is not None:
                results.append(scripted)
                continue
            self.sent.append(message)
            results.append(Accepted(message.message_id, f"memory-{message.message_id}"))
        return results

    def by_id(self) -> dict[str, OutgoingMessage]:
        return {message.message_id: message for message in self.sent}
