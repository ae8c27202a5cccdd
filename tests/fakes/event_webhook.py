"""SendGrid's side of the signed event webhook, for tests: a key pair and event batches.

`EventSigner.public_key` is what goes into `MOBILISE_SENDGRID_WEBHOOK_PUBLIC_KEY`;
`headers(body, timestamp)` gives the two headers SendGrid would send with that body.
`events_for(recorded)` turns requests the fake SendGrid accepted into the events
SendGrid would post back, custom_args included.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from engine.track.sendgrid_events import SIGNATURE_HEADER, TIMESTAMP_HEADER
from tests.fakes.sendgrid_server import Recorded


@dataclass
class EventSigner:
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    @property
    def public_key(self) -> str:
        der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def headers(self, body: bytes, timestamp: datetime) -> dict[str, str]:
        stamp = str(int(timestamp.timestamp()))
        signature = self.private_key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {SIGNATURE_HEADER: base64.b64encode(signature).decode(), TIMESTAMP_HEADER: stamp}


_event_ids = itertools.count()


def events_for(
    recorded: Iterable[Recorded], *, event: str, at: datetime, **extra: Any
) -> list[dict[str, Any]]:
    """One event per personalisation of each accepted request, as SendGrid posts them."""
    events = []
    for request in recorded:
        for position, personalisation in enumerate(request.body["personalizations"]):
            events.append(
                {
                    "email": personalisation["to"][0]["email"],
                    "timestamp": int(at.timestamp()),
                    "event": event,
                    "sg_event_id": f"ev{next(_event_ids):010d}",
                    "sg_message_id": f"{request.x_message_id}.filter0001.{position}.0",
                    "category": request.body.get("categories", []),
                    **personalisation.get("custom_args", {}),
                    **extra,
                }
            )
    return events
