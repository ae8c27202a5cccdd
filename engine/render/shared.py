"""One render shared by every recipient whose template values are the same; each email's
own links filled in after.

A bulk send renders the same email again and again: the thank-you for every "Camille", the
first-gift ask for every non-donor with the same first name. Only the signed links differ
from one email to the next (engine.render.tokens). So the skeleton render
(engine.render.skeletons) runs once per distinct set of the values a template reads, with a
*hole* where each link goes, and each email gets that render's skeletons and substitution
values with its own links put in the holes: the same bytes as its own full render
(tests/unit/render/test_shared.py holds the two together).

A hole is NUL, its number, NUL: NUL is refused in every text Mobilise stores, and a render
where one turns up anywhere but in the substitution values (a subject that prints a link, a
filter applied to a URL) is not shared: those recipients get their own render. So does a
recipient whose values are not plain (text, whole numbers, booleans, decimals, nothing), and
any site whose base URL would need escaping in HTML.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, NamedTuple

from jinja2 import nodes

from engine.config import Secret
from engine.render import tokens

HOLE = "\x00"
_HOLES = re.compile("\x00([0-9]+)\x00")
# Kept per template; past this (many distinct first names), the oldest half goes.
KEPT = 4096
_PLAIN = (str, int, bool, type(None))
_MISSING = object()  # a value the context lacks: the render raises, nothing is kept


class Hole(NamedTuple):  # a tuple: one is made per link of every email
    """Where one signed URL of an email goes: the unsubscribe link, the rights page, a
    tracked link (its position), or a donation link (its position, amount and frequency)."""

    kind: str  # "u", "r", "c" or "d"
    position: int = 0
    cents: int = 0
    frequency: str = ""

    def url(self, *, secret: Secret, message_id: int, base: str) -> str:
        """This link of email `message_id`, signed, under `base`."""
        if self.kind == "u":
            return f"{base}/u/{tokens.unsubscribe_token(secret, message_id)}"
        if self.kind == "r":
            return f"{base}/rights/{tokens.rights_token(secret, message_id)}"
        if self.kind == "c":
            return f"{base}/c/{tokens.click_token(secret, message_id, self.position)}"
        token = tokens.donation_token(secret, message_id, self.position, self.cents, self.frequency)
        return f"{base}/c/{token}"


class Holes:
    """The holes of one render, numbered as the template asks for them."""

    def __init__(self) -> None:
        self.found: list[Hole] = []
        self._numbers: dict[Hole, str] = {}

    def mark(self, hole: Hole) -> str:
        marked = self._numbers.get(hole)
        if marked is None:
            marked = self._numbers[hole] = f"{HOLE}{len(self.found)}{HOLE}"
            self.found.append(hole)
        return marked


def holes_in(values: tuple[str, ...], holed: tuple[int, ...]) -> frozenset[int]:
    return frozenset(int(n) for index in holed for n in _HOLES.findall(values[index]))


class SharedRender(NamedTuple):
    """A render's skeletons (subject, preheader, HTML, text) and its substitution values in
    tag order, holes marked in those values only."""

    subject: str
    preheader: str
    html: str
    text: str
    values: tuple[str, ...]
    holes: tuple[Hole, ...]
    # Positions in `values` of the values with holes, and the holes they hold.
    holed: tuple[int, ...]
    used: frozenset[int]

    def urls(self, sign: Callable[[Hole], str]) -> list[str]:
        """One email's URL for each hole its render uses, `sign` making each (the
        unsubscribe one, hole 0, always: the headers carry it)."""
        used = self.used
        return [sign(hole) if i in used or i == 0 else "" for i, hole in enumerate(self.holes)]

    def substitutions(self, urls: list[str], tags: tuple[str, ...]) -> dict[str, str]:
        """Tag → value for one email, `urls` being its URL for each hole."""
        filled = dict(zip(tags, self.values, strict=False))
        for index in self.holed:
            filled[tags[index]] = _HOLES.sub(lambda m: urls[int(m.group(1))], self.values[index])
        return filled


def key(context: Mapping[str, Any], names: tuple[str, ...]) -> tuple[object, ...] | None:
    """The values of `names` a render depends on, as a key; None when one is not plain."""
    found: list[object] = []
    for name in names:
        value = context.get(name, _MISSING)
        kind = type(value)
        if kind in _PLAIN:
            found.append((kind, value))
        elif kind is Decimal:
            # Equal decimals can print differently (20 and 20.00): their text is the key.
            found.append((kind, str(value)))
        elif value is _MISSING:
            found.append(_MISSING)
        else:
            return None
    return tuple(found)


def links_printed_whole(
    bodies: Iterable[nodes.Template], lines: Iterable[nodes.Template], links: frozenset[str]
) -> bool:
    """Whether a template's renders can be shared: in its `bodies` (HTML, text) every use of
    a link variable in `links` is printed whole (`{{ _link0 }}`, `{{ _link1(30) }}`: a hole
    then stands where the URL goes), and its subject and preheader (`lines`) use none. A
    link tested, measured, filtered or stored in a variable would see the hole, not the URL.
    """
    for tree in lines:
        if any(name.name in links for name in tree.find_all(nodes.Name)):
            return False
    for tree in bodies:
        used = sum(name.name in links for name in tree.find_all(nodes.Name))
        whole = 0
        for output in tree.find_all(nodes.Output):
            for item in output.nodes:
                called = item.node if isinstance(item, nodes.Call) else item
                if isinstance(called, nodes.Name) and called.name in links:
                    whole += 1
        if used != whole:
            return False
    return True


def base_is_inert(base: str) -> bool:
    """A base URL that HTML escaping leaves as it is (the holes are filled unescaped)."""
    return not any(c in base for c in "&<>\"'") and HOLE not in base


class SharedRenders:
    """The renders of one template version by key; None for a key whose render cannot be
    shared (its recipients each get their own).

    A render is made for a key the second time it turns up: a key seen once (a rare first
    name) costs its recipient nothing more than its own render."""

    def __init__(self) -> None:
        self._renders: dict[tuple[object, ...], SharedRender | None] = {}
        self._seen: set[tuple[object, ...]] = set()

    def get(
        self,
        found_key: tuple[object, ...],
        make: Callable[[], SharedRender | None],
    ) -> SharedRender | None:
        try:
            return self._renders[found_key]
        except KeyError:
            pass
        if found_key not in self._seen:
            if len(self._seen) >= 16 * KEPT:
                self._seen.clear()
            self._seen.add(found_key)
            return None
        made = make()
        if len(self._renders) >= KEPT:
            for old in list(self._renders)[: KEPT // 2]:
                del self._renders[old]
        self._renders[found_key] = made
        return made
