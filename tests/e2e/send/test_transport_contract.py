"""What every transport promises the dispatcher, checked on all four."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from engine.send.files import FileTransport
from engine.send.sendgrid_api import SendGridTransport
from engine.send.smtp import SmtpTransport
from engine.send.transport import Accepted, MemoryTransport, Transport
from tests.fakes.messages import thank_you
from tests.fakes.sendgrid_server import API_KEY, FakeSendGrid
from tests.fakes.smtp_server import running_smtp_server


@pytest.fixture(params=["memory", "file", "smtp", "sendgrid"])
def transport(request: pytest.FixtureRequest, tmp_path: Path, now: datetime) -> Iterator[Transport]:
    if request.param == "memory":
        yield MemoryTransport()
    elif request.param == "file":
        yield FileTransport(tmp_path, clock=lambda: now)
    elif request.param == "smtp":
        with running_smtp_server() as relay:
            yield SmtpTransport(relay.host, relay.port, starttls="never", clock=lambda: now)
    else:
        fake: FakeSendGrid = request.getfixturevalue("sendgrid_server")
        yield SendGridTransport(API_KEY, host=fake.url, clock=lambda: now)


def test_one_result_per_message_in_order(transport: Transport) -> None:
    # given a batch of distinct messages, two to the same address
    batch = [thank_you(i) for i in range(5)] + [thank_you(5, to=thank_you(0).to)]
    # when any transport sends it
    results = transport.send(batch)
    # then each message gets exactly one result, in the order given, all accepted
    assert [r.message_id for r in results] == [m.message_id for m in batch]
    assert all(isinstance(r, Accepted) and r.provider_id for r in results)
    assert transport.batch_size > 0
    assert transport.name in {"memory", "file", "smtp", "sendgrid"}


def test_an_empty_batch_sends_nothing(transport: Transport) -> None:
    assert transport.send([]) == []
