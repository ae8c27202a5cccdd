"""Find the links of a compiled template and make them tracked.

Every `<a href>` in the compiled HTML (Outlook conditional comments included) must be
one of: an absolute http(s) URL, which is tracked (replaced by a placeholder that
becomes `{base_url}/c/{token}` per recipient, its position being its index in
`links`); `mailto:`, `tel:` or `#…`, left alone; or exactly `{{ unsubscribe_url }}`
or another engine-made action URL, which is signed already and never tracked.
Anything else, in particular a URL built with Jinja, is refused: the click redirect
only ever goes to a URL stored for the template version, so it cannot be dynamic.

One exception, the donation link: `href="{{ donation_url(amount) }}"` (or
`donation_url(amount, 'monthly')`) as the whole href. It is tracked too, stored as
`DONATION_LINK` (the organisation's donation page, MOBILISE_DONATION_URL, read at
redirect time), and its click token also carries the amount and the frequency, signed:
the redirect adds them and the email's attribution reference to the page's URL, so that
the page can prefill the gift and the payment platform can hand the reference back.
The amount is the very value the email shows; nobody can change it or the page.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from jinja2 import TemplateError, TemplateRuntimeError, nodes

from engine.render import sandbox, tokens
from engine.render.placeholders import Construct, Protected, link_variable

# Engine-made URLs a template may use as a whole href (see the module docstring).
ACTION_URLS = frozenset({"unsubscribe_url", "rights_url", "confirm_url"})
# Only anchors are links a person clicks: `<link href>` loads a web font or stylesheet.
_ANCHOR = re.compile(r"<a\s[^>]*>", re.IGNORECASE)
_HREF = re.compile(r"""(\bhref\s*=\s*)(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.IGNORECASE)
_UNTRACKED = ("mailto:", "tel:", "#")
# What a donation link stores in place of a URL: the redirect goes to the donation page
# configured when it runs, with the token's amount and frequency.
DONATION_LINK = "mobilise:donation"
DONATION_FUNCTION = "donation_url"
_DONATION_ARGUMENTS = ("amount", "frequency")


@dataclass(frozen=True)
class LinkIssue:
    message: str
    # Text to look for in the source, to give the problem a line number.
    needle: str


@dataclass(frozen=True)
class TrackedHtml:
    html: str
    links: tuple[str, ...]
    issues: tuple[LinkIssue, ...]
    # Link position -> the Jinja expression that makes its URL (donation links), for
    # `Protected.restore`.
    calls: dict[int, str] = field(default_factory=dict)


def track(compiled: str, protected: Protected) -> TrackedHtml:
    """Replace each static http(s) href with its link placeholder, in document order."""
    links: list[str] = []
    issues: list[LinkIssue] = []
    calls: dict[int, str] = {}
    donations: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        raw = match[2] if match[2] is not None else match[3] or match[4] or ""
        constructs = protected.find(raw)
        if constructs:
            only = constructs[0]
            if len(constructs) == 1 and raw.strip() == only.placeholder:
                if only.variable in ACTION_URLS:
                    return match[0]
                call = _donation_call(only)
                if call is not None:
                    problem = _bad_donation_call(call)
                    if problem:
                        issues.append(LinkIssue(problem, only.source))
                        return match[0]
                    donations.add(only.placeholder)
                    links.append(DONATION_LINK)
                    position = len(links) - 1
                    # The author's call, on the link's own function (`_link<i>(...)`).
                    name = only.source.index(DONATION_FUNCTION)
                    calls[position] = (
                        only.source[:name]
                        + link_variable(position)
                        + only.source[name + len(DONATION_FUNCTION) :]
                    )
                    return f'{match[1]}"{protected.link(position)}"'
            issues.append(
                LinkIssue(
                    f"dynamic link {protected.restore(raw)!r}: links must be "
                    f"static URLs (tracked) or one of {', '.join(sorted(ACTION_URLS))}",
                    only.source,
                )
            )
            return match[0]
        url = html.unescape(raw).strip()
        if url.lower().startswith(("http://", "https://")):
            links.append(url)
            return f'{match[1]}"{protected.link(len(links) - 1)}"'
        if not url.lower().startswith(_UNTRACKED):
            issues.append(LinkIssue(f"link {url!r} is not an absolute http(s) URL", raw))
        return match[0]

    def replace_in_anchor(anchor: re.Match[str]) -> str:
        return _HREF.sub(replace, anchor[0])

    tracked = _ANCHOR.sub(replace_in_anchor, compiled)
    for construct in protected.constructs:
        if construct.placeholder not in donations and _names_donation_function(construct):
            issues.append(
                LinkIssue(
                    f"{construct.source}: {DONATION_FUNCTION}(...) makes a link; use it as the"
                    " whole href of a link or button",
                    construct.source,
                )
            )
    return TrackedHtml(tracked, tuple(links), tuple(issues), calls)


def _parsed(construct: Construct) -> nodes.Template | None:
    try:
        return sandbox.HTML.parse(construct.source)
    except TemplateError:  # check_jinja reports it
        return None


def _donation_call(construct: Construct) -> nodes.Call | None:
    """The call, when the construct is exactly `{{ donation_url(...) }}`."""
    if DONATION_FUNCTION not in construct.source:
        return None
    tree = _parsed(construct)
    if tree is None or len(tree.body) != 1:
        return None
    output = tree.body[0]
    if not isinstance(output, nodes.Output) or len(output.nodes) != 1:
        return None
    call = output.nodes[0]
    if (
        isinstance(call, nodes.Call)
        and isinstance(call.node, nodes.Name)
        and call.node.name == DONATION_FUNCTION
    ):
        return call
    return None


def _bad_donation_call(call: nodes.Call) -> str | None:
    given = len(call.args) + len(call.kwargs)
    keys = [k.key for k in call.kwargs]
    if call.dyn_args or call.dyn_kwargs or not 1 <= given <= 2 or len(call.args) > 2:
        return f"{DONATION_FUNCTION}(amount[, frequency]) takes an amount and a frequency"
    if any(k not in _DONATION_ARGUMENTS[len(call.args) :] for k in keys):
        return f"{DONATION_FUNCTION}(amount[, frequency]): unexpected argument {keys}"
    frequency = (
        call.args[1]
        if len(call.args) == 2
        else next((k.value for k in call.kwargs if k.key == "frequency"), None)
    )
    if isinstance(frequency, nodes.Const) and frequency.value not in tokens.FREQUENCIES:
        return (
            f"{DONATION_FUNCTION}: frequency {frequency.value!r} is not one of "
            f"{', '.join(tokens.FREQUENCIES)}"
        )
    return None


def _names_donation_function(construct: Construct) -> bool:
    if DONATION_FUNCTION not in construct.source:
        return False
    tree = _parsed(construct)
    return tree is not None and any(n.name == DONATION_FUNCTION for n in tree.find_all(nodes.Name))


def donation_function(link: Callable[[int, str], str]) -> Callable[..., str]:
    """`donation_url(amount, frequency)` for one link of one email: the amount checked and
    turned into cents, then `link(cents, frequency)` (a signed URL, or a render's hole:
    engine.render.shared). The HTML and the text part ask for the same links: each is made
    once."""
    made: dict[tuple[str, str], str] = {}

    def url(amount: object, frequency: str = "one-off") -> str:
        key = (str(amount), frequency)
        found = made.get(key)
        if found is None:
            found = made[key] = link(_cents(amount, frequency), frequency)
        return found

    return url


def _cents(amount: object, frequency: str) -> int:
    try:
        cents = int((Decimal(str(amount)) * 100).quantize(Decimal(1), ROUND_HALF_UP))
    except (InvalidOperation, ValueError):
        raise TemplateRuntimeError(f"{DONATION_FUNCTION}: {amount!r} is not an amount") from None
    if frequency not in tokens.FREQUENCIES or not 0 < cents <= tokens.MAX_DONATION_CENTS:
        raise TemplateRuntimeError(
            f"{DONATION_FUNCTION}({amount!r}, {frequency!r}): a positive amount, and a"
            f" frequency among {', '.join(tokens.FREQUENCIES)}"
        )
    return cents


# The parameters the donation page receives (docs/donations.md).
DONATION_PARAMETERS = ("amount", "frequency", "reference")


def donation_page_url(page: str, *, amount_cents: int, frequency: str, reference: str) -> str:
    """The donation page `page` with the gift's amount (in currency units, `20.00`),
    frequency and attribution reference; parameters of the page's own are kept, ours win."""
    parts = urlsplit(page)
    kept = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k not in DONATION_PARAMETERS
    ]
    amount = f"{amount_cents // 100}.{amount_cents % 100:02d}"
    query = urlencode(
        [*kept, ("amount", amount), ("frequency", frequency), ("reference", reference)]
    )
    return urlunsplit(parts._replace(query=query))
