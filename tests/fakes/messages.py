"""Outgoing messages shaped like the thank-you email, for transport tests and the bench."""

from __future__ import annotations

from typing import Any

from engine.send.transport import Address, OutgoingMessage

SENDER = Address("petitions@example.org", "Collectif Visages Libres")
SUBJECT = "Merci -first_name- !"
HTML = (
    "<html><body><p>Bonjour -first_name_html-,</p>"
    '<p>Merci d\'avoir signé. <a href="-click_url-">Suivre la campagne</a></p>'
    + "<p>Texte de la campagne, assez long pour ressembler à un vrai courriel.</p>" * 40
    + '<p><a href="-unsubscribe_url-">Se désinscrire</a></p></body></html>'
)
TEXT = (
    "Bonjour -first_name-,\n\nMerci d'avoir signé.\n-click_url-\n\n"
    "Se désinscrire : -unsubscribe_url-\n"
)


def thank_you(index: int, **overrides: Any) -> OutgoingMessage:
    """The `index`-th signer's thank-you, as a skeleton plus substitutions."""
    token = f"tok{index:07d}"
    fields: dict[str, Any] = {
        "message_id": f"msg-{index:07d}",
        "to": Address(f"signer{index}@example.net", f"Signataire {index}"),
        "sender": SENDER,
        "subject": SUBJECT,
        "html": HTML,
        "text": TEXT,
        "headers": {
            "List-Unsubscribe": f"<https://mobilise.example.org/u/{token}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "X-Mobilise-Journey": "stop-reconnaissance-faciale",
            "X-Mobilise-Step": "thanked",
            "X-Mobilise-Message": f"msg-{index:07d}",
        },
        "categories": ("journey:stop-reconnaissance-faciale", "step:thanked"),
        "custom_args": {"journey": "stop-reconnaissance-faciale", "step": "thanked"},
        "template_version": "thanked@1",
        "variant": "a",
        "substitutions": {
            "-first_name-": f"Prénom{index}",
            "-first_name_html-": f"Pr&eacute;nom{index}",
            "-click_url-": f"https://mobilise.example.org/c/{token}",
            "-unsubscribe_url-": f"https://mobilise.example.org/u/{token}",
        },
    }
    fields.update(overrides)
    return OutgoingMessage(**fields)
