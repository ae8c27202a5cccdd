"""Find the links of a compiled template and make them tracked.

Every `<a href>` in the compiled HTML (Outlook conditional comments included) must be
one of: an absolute http(s) URL, which is tracked (replaced by a placeholder that
becomes `{base_url}/c/{token}` per recipient, its position being its index in
`links`); `mailto:`, `tel:` or `#…`, left alone; or exactly `{{ unsubscribe_url }}`
or another engine-made action URL, which is signed already and never tracked.
Anything else, in particular a URL built with Jinja, is refused: the click redirect
only ever goes to a URL stored for the template version, so it cannot be dynamic.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from engine.render.placeholders import Protected

# Engine-made URLs a template may use as a whole href (see the module docstring).
ACTION_URLS = frozenset({"unsubscribe_url", "rights_url", "confirm_url"})
# Only anchors are links a person clicks: `<link href>` loads a web font or stylesheet.
_ANCHOR = re.compile(r"<a\s[^>]*>", re.IGNORECASE)
_HREF = re.compile(r"""(\bhref\s*=\s*)(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.IGNORECASE)
_UNTRACKED = ("mailto:", "tel:", "#")


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


def track(compiled: str, protected: Protected) -> TrackedHtml:
    """Replace each static http(s) href with its link placeholder, in document order."""
    links: list[str] = []
    issues: list[LinkIssue] = []

    def replace(match: re.Match[str]) -> str:
        raw = match[2] if match[2] is not None else match[3] or match[4] or ""
        constructs = protected.find(raw)
        if constructs:
            only = constructs[0]
            if len(constructs) == 1 and raw.strip() == only.placeholder:
                if only.variable in ACTION_URLS:
                    return match[0]
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

    return TrackedHtml(_ANCHOR.sub(replace_in_anchor, compiled), tuple(links), tuple(issues))
