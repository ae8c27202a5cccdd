"""Two API processes recording clicks on one email at once (PostgreSQL, `--workers 2`):
each sees the other's, so a scanner opening two links in parallel is flagged as it would
be one click after the other. (SQLite has one writer at a time: its second transaction
fails on the first's write and is written again click by click, engine/store/group_commit.py.)"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select, text

from engine.store.clicks import ClickIn, record_many
from engine.store.db import make_engine
from engine.store.models import Click, OutboxMessage
from tests.e2e.webhooks import sent_update


def waits_for_a_lock(engine: Engine) -> bool:
    with engine.connect() as probe:
        waiting = probe.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()"
            )
        )
    return bool(waiting)


def test_two_writers_clicking_two_links_of_one_email_at_once_flag_both(
    postgresql_scratch_url: str,
) -> None:
    # Given an email with two links, and a first writer that recorded a click on the first
    # link a minute after the send, not committed yet
    engine = make_engine(postgresql_scratch_url)
    try:
        message_id, _ = sent_update(engine, "race", ("https://example.org/a", "https://b.org/"))
        with engine.connect() as connection:
            supporter = connection.scalar(
                select(OutboxMessage.supporter_id).where(OutboxMessage.id == message_id)
            )
        at = datetime.now(UTC) + timedelta(minutes=1)
        first = engine.connect()
        first.begin()
        record_many(first, [ClickIn(message_id, 0, supporter, at)])

        # When a second writer records a click on the second link a second later
        def second() -> None:
            with engine.begin() as connection:
                record_many(
                    connection, [ClickIn(message_id, 1, supporter, at + timedelta(seconds=1))]
                )

        other = threading.Thread(target=second)
        other.start()
        deadline = time.monotonic() + 30
        while other.is_alive() and not waits_for_a_lock(engine) and time.monotonic() < deadline:
            time.sleep(0.01)  # polling the server's state, not waiting for time to pass
        first.commit()
        first.close()
        other.join(timeout=30)

        # Then the second waited for the first and saw its click: both are a scanner's
        with engine.connect() as connection:
            flags = connection.execute(
                select(Click.link_position, Click.automated)
                .where(Click.message_id == message_id)
                .order_by(Click.link_position)
            ).all()
        assert [tuple(f) for f in flags] == [(0, True), (1, True)]
    finally:
        engine.dispose()
