from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from tests.fakes.sendgrid_server import FakeSendGrid


@pytest.fixture
def sendgrid_server(now: datetime) -> Iterator[FakeSendGrid]:
    """The local SendGrid stand-in, validating against SendGrid's OpenAPI schema."""
    with FakeSendGrid(clock=lambda: now).running() as server:
        yield server
