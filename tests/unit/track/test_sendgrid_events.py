from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from engine.config import Settings
from engine.errors import Invalid
from engine.track import sendgrid_events
from engine.track.sendgrid_events import ProviderEvent, WebhookNotConfigured, WebhookRefused
from tests.reference import SENDGRID
from tests.unit.track import sendgrid_vectors as vectors

SIGNED_AT = datetime.fromtimestamp(int(vectors.TIMESTAMP), UTC)
WEEK = timedelta(days=7)


def _verify(body: str, **overrides: Any) -> bool:
    arguments: dict[str, Any] = {
        "signature": vectors.SIGNATURE,
        "timestamp": vectors.TIMESTAMP,
        "public_key": vectors.PUBLIC_KEY,
        "env": "production",
        "now": SIGNED_AT + timedelta(minutes=1),
    }
    arguments.update(overrides)
    return sendgrid_events.verify(body.encode(), **arguments)


def test_the_sdk_signed_vector_verifies() -> None:
    # given the SDK's own signed payload, within the replay window
    # when it is verified  # then the signature is accepted
    assert _verify(vectors.PAYLOAD) is True


def test_the_sdk_legacy_vector_verifies() -> None:
    assert _verify(
        vectors.LEGACY_PAYLOAD,
        signature=vectors.LEGACY_SIGNATURE,
        timestamp=vectors.LEGACY_TIMESTAMP,
        public_key=vectors.LEGACY_PUBLIC_KEY,
        now=datetime.fromtimestamp(int(vectors.LEGACY_TIMESTAMP), UTC),
    )


@pytest.mark.parametrize(
    ("body", "overrides"),
    [
        pytest.param(vectors.PAYLOAD, {"public_key": vectors.OTHER_KEY}, id="other-key"),
        pytest.param(vectors.PAYLOAD.replace("dropped", "dropper"), {}, id="tampered-body"),
        pytest.param(vectors.PAYLOAD.rstrip(), {}, id="body-without-its-crlf"),
        pytest.param(vectors.PAYLOAD, {"signature": vectors.LEGACY_SIGNATURE}, id="other-sig"),
        pytest.param(vectors.PAYLOAD, {"signature": "not base64!"}, id="garbled-signature"),
        pytest.param(vectors.PAYLOAD, {"timestamp": "1600112503"}, id="other-timestamp"),
        pytest.param(vectors.PAYLOAD, {"timestamp": "timestamp"}, id="malformed-timestamp"),
        pytest.param(vectors.PAYLOAD, {"signature": None}, id="no-signature-header"),
        pytest.param(vectors.PAYLOAD, {"timestamp": ""}, id="no-timestamp-header"),
    ],
)
def test_anything_not_signed_by_the_key_is_refused(body: str, overrides: dict[str, Any]) -> None:
    with pytest.raises(WebhookRefused):
        _verify(body, **overrides)


@pytest.mark.parametrize("offset", [timedelta(minutes=11), timedelta(minutes=-11)])
def test_a_signed_body_outside_the_replay_window_is_refused(offset: timedelta) -> None:
    # given a valid signature replayed 11 minutes later (or a clock 11 minutes behind)
    # when verified  # then it is refused as a replay
    with pytest.raises(WebhookRefused, match="replay window"):
        _verify(vectors.PAYLOAD, now=SIGNED_AT + offset)


@pytest.mark.parametrize("env", ["production", None])
def test_without_a_key_everything_is_refused_unless_in_development(env: str | None) -> None:
    # given no public key, in production or with MOBILISE_ENV unset
    # when a batch arrives  # then it is refused as a configuration problem (503, retried)
    with pytest.raises(WebhookNotConfigured, match="no public key") as refused:
        _verify(vectors.PAYLOAD, public_key="", env=env)
    assert refused.value.status_code == 503


def test_explicit_development_without_a_key_accepts_unverified() -> None:
    assert _verify(vectors.PAYLOAD, public_key="", env="development") is False


def test_a_malformed_configured_key_is_a_configuration_error() -> None:
    with pytest.raises(Invalid, match="PUBLIC_KEY"):
        _verify(vectors.PAYLOAD, public_key="bm90IGEga2V5")


def test_a_batch_signed_with_our_own_key_verifies_and_parses(now: datetime) -> None:
    # given a key pair like the one SendGrid holds, and a batch carrying our custom_args
    private_key = ec.generate_private_key(ec.SECP256R1())
    public_der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    event = {
        "email": "Signer@Example.net",
        "event": "processed",
        "timestamp": int(now.timestamp()),
        "sg_event_id": "ev-1",
        "sg_message_id": "REQ123.filter-1",
        "mobilise_message_id": "msg-0000001",
        "journey": "stop-reconnaissance-faciale",
    }
    body = json.dumps([event]).encode()
    timestamp = str(int(now.timestamp()))
    signature = private_key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    # when it is verified and parsed
    verified = sendgrid_events.verify(
        body,
        signature=base64.b64encode(signature).decode(),
        timestamp=timestamp,
        public_key=base64.b64encode(public_der).decode(),
        env="production",
        now=now,
    )
    events, skipped = sendgrid_events.parse(body)
    # then the event maps back to our message and request
    assert verified is True
    assert skipped == []
    assert events[0].mobilise_message_id == "msg-0000001"
    assert events[0].custom_args == {
        "mobilise_message_id": "msg-0000001",
        "journey": "stop-reconnaissance-faciale",
    }
    assert events[0].email == "signer@example.net"
    assert events[0].provider_request_id == "REQ123"
    assert events[0].occurred_at == now


def _samples() -> list[dict[str, Any]]:
    path = SENDGRID / "event_webhook_sample.json"
    samples: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return samples


# The suppression each documented event implies.
EXPECTED = {
    "processed": None,
    "deferred": None,
    "delivered": None,
    "open": None,
    "click": None,
    "bounce": "bounce",
    "dropped": "bounce",
    "spamreport": "complaint",
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "unsubscribe",
    "group_resubscribe": None,
}


def test_every_documented_sample_event_parses_and_maps() -> None:
    # given the documented example of each event type
    body = json.dumps(_samples()).encode()
    # when the batch is parsed
    events, skipped = sendgrid_events.parse(body)
    # then each becomes a typed event with its suppression
    assert skipped == []
    assert sorted(e.event for e in events) == sorted(EXPECTED)
    for event in events:
        suppression = EXPECTED[event.event]
        found = sendgrid_events.suppression_for(event, block_for=WEEK)
        assert (found.reason if found else None) == suppression, event.event
        assert found is None or found.lift_after is None, event.event  # for good
        assert event.occurred_at == datetime(2017, 12, 15, 0, 59, 29, tzinfo=UTC)
        assert event.categories == ("cat facts",)
        assert event.mobilise_message_id is None
    by_type = {e.event: e for e in events}
    assert by_type["bounce"].reason == "500 unknown recipient"
    assert by_type["click"].url == "http://www.sendgrid.com/"
    group = sendgrid_events.suppression_for(by_type["group_unsubscribe"], block_for=WEEK)
    assert group is not None
    assert group.asm_group_id == 10


def _event(kind: str, at: int = 1_700_000_000, **extra: Any) -> ProviderEvent:
    item = {"event": kind, "timestamp": at, "email": "a@example.org", **extra}
    return sendgrid_events.parse_event(item)


def test_blocks_are_suppressed_for_a_while_not_forever() -> None:
    suppression = sendgrid_events.suppression_for(_event("bounce", type="blocked"), block_for=WEEK)
    assert suppression is not None
    assert suppression.reason == "blocked"
    assert suppression.lift_after == WEEK
    # 7 days unless MOBILISE_BLOCK_SUPPRESSION_DAYS says otherwise (docs/operations.md)
    assert Settings().block_suppression == WEEK
    assert Settings(block_suppression_days=2).block_suppression == timedelta(days=2)


@pytest.mark.parametrize(
    ("reason", "suppressed"),
    [
        ("Bounced Address", "bounce"),
        ("Unsubscribed Address", "unsubscribe"),
        ("Spam Reporting Address", "complaint"),
        ("Invalid", "invalid_address"),
        ("Spam Content (if spam checker app enabled)", None),
        ("Invalid SMTPAPI header", None),
    ],
)
def test_only_drops_about_the_address_suppress_it(reason: str, suppressed: str | None) -> None:
    found = sendgrid_events.suppression_for(_event("dropped", reason=reason), block_for=WEEK)
    assert (found.reason if found else None) == suppressed


@pytest.mark.parametrize(
    ("current", "incoming", "applies"),
    [
        (None, "delivered", True),
        ("processed", "delivered", True),
        ("open", "delivered", False),  # delivered arriving after the open
        ("delivered", "deferred", False),
        ("click", "bounce", True),
        ("bounce", "open", False),
        ("delivered", "spamreport", True),
        ("delivered", "group_resubscribe", False),
    ],
)
def test_state_only_moves_up_the_precedence_ladder(
    current: str | None, incoming: str, applies: bool
) -> None:
    at = datetime.fromtimestamp(1_700_000_000, UTC)
    assert sendgrid_events.supersedes(_event(incoming), current, at) is applies


def test_equal_rank_events_apply_by_timestamp() -> None:
    at = datetime.fromtimestamp(1_700_000_000, UTC)
    assert sendgrid_events.supersedes(_event("open", 1_700_000_001), "open", at) is True
    assert sendgrid_events.supersedes(_event("open", 1_699_999_999), "open", at) is False


def test_events_without_an_id_get_a_stable_content_key() -> None:
    first, again = _event("open", url="x"), _event("open", url="x")
    assert first.dedup_key == again.dedup_key
    assert first.dedup_key.startswith("sha256:")
    assert _event("open", sg_event_id="abc").dedup_key == "abc"


def test_unreadable_items_are_reported_and_the_rest_kept() -> None:
    body = json.dumps(
        [
            {"event": "delivered", "timestamp": 1, "email": "a@example.org"},
            {"event": "teleported", "timestamp": 1, "email": "a@example.org"},
            {"event": "open"},
            "not an object",
        ]
    ).encode()
    events, skipped = sendgrid_events.parse(body)
    assert [e.event for e in events] == ["delivered"]
    assert len(skipped) == 3


@pytest.mark.parametrize("body", [b"{not json", b'{"event": "open"}', b"\xff\xfe"])
def test_a_body_that_is_not_a_json_array_is_invalid(body: bytes) -> None:
    with pytest.raises(Invalid):
        sendgrid_events.parse(body)


def test_privacy_proxy_opens_are_flagged() -> None:
    assert _event("open", sg_machine_open=True).machine_open is True
    assert _event("open").machine_open is False
