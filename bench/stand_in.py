"""The SendGrid stand-in (tests/fakes/sendgrid_server.py) in a process of its own, for the
benches: what it costs to answer is then not counted in the sender's process.

    with sendgrid_stand_in() as stand_in:
        ...  # send to stand_in.url
        requests, personalisations = stand_in.stop()
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection

from tests.fakes.sendgrid_server import FakeSendGrid


def _serve(validate: bool, pipe: Connection) -> None:
    fake = FakeSendGrid(validate=validate, keep_bodies=False)
    with fake.running():
        pipe.send(fake.url)
        pipe.recv()  # wait for the stop signal
        pipe.send((len(fake.accepted), fake.accepted_personalisations))


@dataclass
class StandIn:
    url: str
    _pipe: Connection

    def stop(self) -> tuple[int, int]:
        """Stops answering; (requests accepted, personalisations accepted)."""
        self._pipe.send("stop")
        requests, personalisations = self._pipe.recv()
        return int(requests), int(personalisations)


@contextmanager
def sendgrid_stand_in(*, validate: bool = False) -> Iterator[StandIn]:
    """With `validate`, each request is checked against SendGrid's schema (slower)."""
    here, there = multiprocessing.Pipe()
    server = multiprocessing.get_context("fork").Process(target=_serve, args=(validate, there))
    server.start()
    try:
        yield StandIn(here.recv(), here)
    finally:
        server.join(timeout=30)
        if server.is_alive():
            server.kill()
