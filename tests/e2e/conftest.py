from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from tests.backends import unavailable
from tests.fakes.sendgrid_server import REFERENCE, FakeSendGrid, reference_available


@pytest.fixture
def sendgrid_server(now: datetime) -> Iterator[FakeSendGrid]:
    """The local SendGrid stand-in, validating against the shared OpenAPI schema."""
    if not reference_available():
        unavailable(f"SendGrid reference schema not found in {REFERENCE.resolve()}")
    with FakeSendGrid(clock=lambda: now).running() as server:
        yield server
