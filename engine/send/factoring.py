"""Fully rendered messages of one template, turned back into a skeleton + substitutions.

The renderer runs Jinja per recipient, so each message arrives with its own subject,
HTML and text. SendGrid takes content once per request, so sending them as they are
would cost one request per recipient. Messages of one template version and variant
differ in a few places only (a name, link tokens, an amount). This module learns
those places from a sample of the group (chunk by chunk, then token by token) and
writes a skeleton with a tag at each. Each message is then matched against it: the
literal runs between tags are compared in place, and each varying chunk goes through
a small pattern whose groups cannot cross a delimiter. A match gives the message's
substitutions, and the skeleton is shared (the same string objects) by all.

Exact by construction: a full match means the skeleton's literal parts and the
captured values concatenate to the message's text, so SendGrid's substitution gives it
back byte for byte. Messages that do not match (a conditional block shown to some
recipients only) are factored again around a reference of their own, for a few rounds;
values too large for SendGrid's 10,000 bytes, or text containing the tag marker, leave
a message as it was (sent alone).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from engine.send import sendgrid_requests
from engine.send.sendgrid_requests import MAX_SUBSTITUTION_BYTES
from engine.send.transport import OutgoingMessage

SAMPLE = 16  # messages the skeleton is learnt from, spread over the group
MAX_ROUNDS = 8  # skeletons per group; past that, messages go as they are
# A marker that rendered email does not contain; checked per message all the same.
_MARKERS = ("%%mbz", "%%mbq", "%%mbx")
# Values end at these: quotes, angle brackets, whitespace and URL/query separators.
_SEPARATORS = "\\s\"'<>=&;,()/?#:."
_TOKENS = re.compile(f"([{_SEPARATORS}]+)")
_FIELDS = ("subject", "html", "text")
# First cut: per tag in HTML, per line elsewhere. Lossless: joined back with the same.
_CUTS = ("\n", "<", "\n")
# What a captured value may contain, so that no group can run past its neighbour.
_TOKEN_VALUE = f"([^{_SEPARATORS}]*)"
# Separators too, minus each field's cut, so that a value never eats the next chunk.
_SEPARATOR_VALUE = (
    "([ \\t\\r\\f\\v\"'<>=&;,()/?#:.]*)",
    "([\\s\"'>=&;,()/?#:.]*)",
    "([ \\t\\r\\f\\v\"'<>=&;,()/?#:.]*)",
)
_CHUNK_VALUE = ("([^\n]*)", "([^<]*)", "([^\n]*)")
# A field as steps: literal text to compare in place, or a pattern for one varying chunk.
Program = tuple[str | re.Pattern[str], ...]

Chunks = tuple[list[str], list[str], list[str]]


@dataclass(frozen=True)
class _Skeleton:
    fields: tuple[str, str, str]
    programs: tuple[Program, Program, Program]
    tags: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]  # per field, in order


def factor(messages: Sequence[OutgoingMessage]) -> list[OutgoingMessage]:
    """The same messages, in order, sharing skeletons where their content allows it.

    Pass messages of one template version and variant; those with substitutions
    already are returned untouched.
    """
    result = list(messages)
    remaining = [i for i, m in enumerate(messages) if not m.substitutions]
    for _ in range(MAX_ROUNDS):
        if len(remaining) < 2:
            break
        remaining = _factor_around(result, remaining)
    return result


def _chunks(message: OutgoingMessage) -> Chunks:
    return (
        message.subject.split(_CUTS[0]),
        message.html.split(_CUTS[1]),
        message.text.split(_CUTS[2]),
    )


def _contains(message: OutgoingMessage, marker: str) -> bool:
    return any(marker in getattr(message, name) for name in _FIELDS)


def _factor_around(result: list[OutgoingMessage], positions: list[int]) -> list[int]:
    """Factor what matches a skeleton learnt around `positions[0]`; return the rest."""
    first = positions[0]
    marker = next((m for m in _MARKERS if not _contains(result[first], m)), None)
    if marker is None:
        return positions[1:]  # `first` goes alone
    step = max(1, len(positions) // SAMPLE)
    skeleton = _learn([result[p] for p in positions[::step][:SAMPLE]], marker)
    if skeleton is None:
        return positions[1:]
    matched: list[tuple[int, dict[str, str]]] = []
    others: list[int] = []
    # A marker could only come from the values (the literal runs are the reference's,
    # which has none) or, with a '%' beside a tag, across a value and its neighbour.
    literal_percent = any(
        "%" in step for program in skeleton.programs for step in program if isinstance(step, str)
    )
    for position in positions:
        values = _match(result[position], skeleton)
        if values is None:
            others.append(position)
        elif (literal_percent or "%" in "".join(values.values())) and _contains(
            result[position], marker
        ):
            others.append(position)
        else:
            matched.append((position, values))
    if len(matched) < 2:
        return [p for p in positions if p != first]
    subject, html, text = skeleton.fields
    for position, values in matched:
        if not sendgrid_requests.exceeds(values, MAX_SUBSTITUTION_BYTES):
            result[position] = result[position].with_content(subject, html, text, values)
    return others


def _match(message: OutgoingMessage, skeleton: _Skeleton) -> dict[str, str] | None:
    """The message's values for the skeleton's tags, or None when it does not fit."""
    values: dict[str, str] = {}
    for f, name in enumerate(_FIELDS):
        found = _run(skeleton.programs[f], getattr(message, name))
        if found is None:
            return None
        values.update(zip(skeleton.tags[f], found, strict=True))
    return values


def _run(program: Program, text: str) -> list[str] | None:
    # Literal runs are compared in place (memcmp, no copy); only the few varying
    # chunks go through a regular expression, anchored where the literal ended.
    position = 0
    found: list[str] = []
    for step in program:
        if isinstance(step, str):
            if not text.startswith(step, position):
                return None
            position += len(step)
        else:
            match = step.match(text, position)
            if match is None:
                return None
            found.extend(match.groups())
            position = match.end()
    return found if position == len(text) else None


def _learn(sample: list[OutgoingMessage], marker: str) -> _Skeleton | None:
    """Where the sample differs from its first message, as a skeleton and patterns."""
    reference = _chunks(sample[0])
    shape = tuple(len(c) for c in reference)
    aligned = [reference] + [
        chunks for chunks in map(_chunks, sample[1:]) if tuple(len(c) for c in chunks) == shape
    ]
    if len(aligned) < 2:
        return None
    fields: list[str] = []
    programs: list[Program] = []
    tags: list[tuple[str, ...]] = []
    count = 0
    for f in range(3):
        varying = sorted(
            {i for chunks in aligned[1:] for i, c in enumerate(chunks[f]) if c != reference[f][i]}
        )
        skeleton = list(reference[f])
        patterns: dict[int, str] = {}
        field_tags: list[str] = []
        for i in varying:
            ref_tokens = _TOKENS.split(reference[f][i])
            split = [_TOKENS.split(chunks[f][i]) for chunks in aligned]
            if all(len(t) == len(ref_tokens) for t in split):
                changed = sorted(
                    {k for t in split for k, tok in enumerate(t) if tok != ref_tokens[k]}
                )
                parts = [re.escape(token) for token in ref_tokens]
                for k in changed:
                    tag = f"{marker}{count}%%"
                    count += 1
                    field_tags.append(tag)
                    ref_tokens[k] = tag
                    parts[k] = _SEPARATOR_VALUE[f] if k % 2 else _TOKEN_VALUE
                skeleton[i] = "".join(ref_tokens)
                patterns[i] = "".join(parts)
            else:
                tag = f"{marker}{count}%%"
                count += 1
                field_tags.append(tag)
                skeleton[i] = tag
                patterns[i] = _CHUNK_VALUE[f]
        fields.append(_CUTS[f].join(skeleton))
        programs.append(_program(reference[f], patterns, _CUTS[f]))
        tags.append(tuple(field_tags))
    return _Skeleton(
        (fields[0], fields[1], fields[2]),
        (programs[0], programs[1], programs[2]),
        (tags[0], tags[1], tags[2]),
    )


def _program(chunks: list[str], patterns: dict[int, str], cut: str) -> Program:
    """Steps for one field: literal runs between the varying chunks' patterns."""
    steps: list[str | re.Pattern[str]] = []
    literal: list[str] = []
    for i, chunk in enumerate(chunks):
        if i:
            literal.append(cut)
        if i in patterns:
            steps.append("".join(literal))
            literal = []
            steps.append(re.compile(patterns[i]))
        else:
            literal.append(chunk)
    steps.append("".join(literal))
    return tuple(step for step in steps if step != "")
