"""One dispatch worker process, as `mobilise worker` runs it, but until the queue is empty.

    python -m tests.volume.worker URL --worker w1 (--sendgrid HOST | --files DIR)
        [--batch 1000] [--offset-minutes 0]

`--offset-minutes` moves this worker's clock forward: a restarted worker that finds the
claims of a killed one "after their lease" without the test waiting ten minutes.
"""

from __future__ import annotations

import argparse
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.render.library import TemplateLibrary
from engine.send.dispatcher import Policy, dispatch
from engine.send.files import FileTransport
from engine.send.sendgrid_api import SendGridTransport
from engine.send.transport import Transport
from engine.store.db import make_engine, make_sessionmaker
from tests.fakes.sendgrid_server import API_KEY
from tests.store.dispatch_helpers import ENVELOPE
from tests.store.journey_helpers import ROOT


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--worker", required=True)
    parser.add_argument("--sendgrid")
    parser.add_argument("--files", type=Path)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--offset-minutes", type=float, default=0.0)
    args = parser.parse_args()
    offset = timedelta(minutes=args.offset_minutes)
    transport: Transport
    if args.sendgrid:
        transport = SendGridTransport(API_KEY, host=args.sendgrid, timeout=30)
    else:
        transport = FileTransport(args.files)
    engine = make_engine(args.url)
    sessions = make_sessionmaker(engine)
    library = TemplateLibrary(ROOT / "templates" / "email")
    policy = Policy(envelope=ENVELOPE, batch_size=args.batch)
    while True:
        report = dispatch(
            sessions.begin,
            transport=transport,
            library=library,
            policy=policy,
            now=datetime.now(UTC) + offset,
            worker_id=args.worker,
            jitter=random.Random(args.worker).random,
        )
        if report.batches == 0:
            break
    engine.dispose()


if __name__ == "__main__":
    main()
