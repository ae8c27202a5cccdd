"""The plain-text part, derived from the compiled HTML once per template version.

html2text costs about a millisecond an email: run per recipient it would be the
whole budget of a bulk send, so it runs on the compiled template (placeholders in
place of Jinja) and the result is itself a Jinja template.
"""

from __future__ import annotations

import re

import html2text

# mjml-python renders `<mj-preview>` as the first hidden div of the body; inbox
# previews read it from the HTML, and in the text part it would repeat the opening.
_PREHEADER = re.compile(r'<div style="display:none;[^"]*">.*?</div>', re.DOTALL)
_BLANK_LINES = re.compile(r"\n[ \t]*(\n[ \t]*)+\n")
# MJML pads button labels with newlines, which html2text keeps: "[ Signer ][1]".
_PADDED_LABEL = re.compile(r"\[[ \t]+([^\[\]\n]*?)[ \t]+\](?=\[\d+\])")


def plain_text(compiled_html: str) -> str:
    converter = html2text.HTML2Text()
    # No wrapping: lines get longer once personalised, and mail clients wrap anyway.
    converter.body_width = 0
    # MJML lays out with tables; as text they are just paragraphs.
    converter.ignore_tables = True
    converter.images_to_alt = True
    converter.ignore_emphasis = True
    # Links as numbered references: the sentence reads cleanly, URLs gather below it.
    converter.inline_links = False
    text = converter.handle(_PREHEADER.sub("", compiled_html, count=1))
    text = _PADDED_LABEL.sub(r"[\1]", text)
    lines = [line.rstrip() for line in text.splitlines()]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip() + "\n"
