"""The whole loop for a send that timed out: transport, signed events back, settlement."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from engine.send import ambiguity
from engine.send.sendgrid_api import SendGridTransport
from engine.send.transport import Ambiguous
from engine.track import sendgrid_events
from tests.fakes.event_webhook import EventSigner, events_for
from tests.fakes.messages import thank_you
from tests.fakes.sendgrid_server import API_KEY, Delay, FakeSendGrid


def test_a_timed_out_request_is_settled_by_its_events_not_resent(
    sendgrid_server: FakeSendGrid, now: datetime
) -> None:
    # given a request SendGrid took but answered too late, and one it never got
    sendgrid_server.faults.extend([Delay(seconds=10), Delay(seconds=10, processed=False)])
    transport = SendGridTransport(
        API_KEY, host=sendgrid_server.url, clock=lambda: now, timeout=0.3, batch_size=2
    )
    first = transport.send([thank_you(1), thank_you(2)])
    sendgrid_server.wait_for_requests(1)
    second = transport.send([thank_you(3), thank_you(4)])
    sendgrid_server.wait_for_requests(2)
    assert all(isinstance(r, Ambiguous) for r in first + second)
    since = {r.message_id: now for r in first + second}

    # when SendGrid posts its signed `processed` events for what it took
    signer = EventSigner()
    body = json.dumps(events_for(sendgrid_server.accepted, event="processed", at=now)).encode()
    headers = signer.headers(body, now)
    sendgrid_events.verify(
        body,
        signature=headers[sendgrid_events.SIGNATURE_HEADER],
        timestamp=headers[sendgrid_events.TIMESTAMP_HEADER],
        public_key=signer.public_key,
        env="production",
        now=now + timedelta(seconds=5),
    )
    events, skipped = sendgrid_events.parse(body)
    # Any event proves that SendGrid took the message, `processed` or a later one.
    seen = {e.mobilise_message_id for e in events if e.mobilise_message_id is not None}

    # then the first two are confirmed, the others wait, then only they are resent
    early = ambiguity.settle(since, seen, now=now + timedelta(minutes=5))
    assert early == ambiguity.Settlement(
        ["msg-0000001", "msg-0000002"], [], ["msg-0000003", "msg-0000004"]
    )
    late = ambiguity.settle(since, seen, now=now + timedelta(minutes=31))
    assert late.resend == ["msg-0000003", "msg-0000004"]
    assert skipped == []
    assert {e.provider_request_id for e in events} == {sendgrid_server.accepted[0].x_message_id}
