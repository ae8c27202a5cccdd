"""Clicks in: a signed link token read, the link's target found, the click recorded.

A donation link's token also carries an amount and a frequency, signed: its target is the
configured donation page with them and the email's attribution reference
(engine.render.links). Each kind of token opens only its kind of link. The click stores
neither the IP address nor the user agent (engine.store.clicks).

The click route's clicks go through `ClickWriter`: the clicks that arrive together are
recorded in one transaction (engine/store/group_commit.py), and each is answered once that
transaction has committed, so a redirect means the click is stored. A commit whose answer
is lost (the connection dropped) leaves the batch's clicks answered "try again", never
written a second time. The writer keeps its
own connection: a connection taken from the pool for each batch cost a round trip to
check it (`pool_pre_ping`) and 0.2 ms of CPU, a batch every few milliseconds. Each batch
reads its messages once, in the statement that also reads the scanner rule's window
(engine.store.clicks.messages): who each went to and its template version. A version's
links never change: the writer keeps them in memory, read once per version.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from engine.config import Secret
from engine.errors import Unavailable
from engine.render import tokens
from engine.render.links import DONATION_LINK, donation_page_url
from engine.store import clicks as click_store
from engine.store import links
from engine.store.group_commit import GroupCommit


@dataclass(frozen=True)
class Click:
    """What a valid token says: which link of which message, and for a donation link the
    gift it proposes (amount in cents, frequency)."""

    message_id: int
    position: int
    gift: tuple[int, str] | None = None


class Refused(Enum):
    UNKNOWN = "unknown"  # no such link in a sent message, or a token of the other kind
    NO_DONATION_PAGE = "no donation page"  # MOBILISE_DONATION_URL is not set


def read(secret: Secret, token: str) -> Click | None:
    """The click a token stands for; None for a malformed or forged one (no database
    work for those)."""
    found = tokens.read_click_token(secret, token)
    if found is not None:
        return Click(*found)
    donation = tokens.read_donation_token(secret, token)
    if donation is None:
        return None
    message_id, position, amount_cents, frequency = donation
    return Click(message_id, position, (amount_cents, frequency))


def target(
    click: Click, found: links.Targets | None, *, secret: Secret, donation_url: str | None
) -> str | Refused:
    """Where the click leads, given its message's links, or why nowhere."""
    url = None if found is None else found.urls.get(click.position)
    if url is None or (url == DONATION_LINK) != (click.gift is not None):
        return Refused.UNKNOWN
    if click.gift is None:
        return url
    if not donation_url:
        return Refused.NO_DONATION_PAGE
    return donation_page_url(
        donation_url,
        amount_cents=click.gift[0],
        frequency=click.gift[1],
        reference=tokens.reference_token(secret, click.message_id),
    )


@dataclass(frozen=True)
class Arrived:
    click: Click
    at: datetime


class ClickWriter:
    """The API process's click recorder: group commit, and the links of the template
    versions seen (a version's links never change; a campaign has a handful)."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], datetime],
        secret: Secret,
        donation_url: str | None,
        burst: timedelta,
        max_batch: int = 512,
        # The requests that arrive while a batch is written are read by the event loop,
        # which shares the interpreter with the writer: taking the next batch at once left
        # half of them out (16 a batch for 32 connections, 860 clicks/s on PostgreSQL;
        # waiting 2 ms, 32 and 1,300/s: bench/README.md). A batch waits at most this long
        # for as many clicks as the last one had (engine/store/group_commit.py).
        wait_s: float = 0.002,
        timeout_s: float = 30.0,
        meanwhile: Callable[[], object] | None = None,
    ) -> None:
        self._engine = engine
        self._connection: Connection | None = None  # kept between batches, not a transaction
        self._clock = clock
        self._secret = secret
        self._donation_url = donation_url
        self._burst = burst
        self._links: dict[tuple[str, str], dict[int, str]] = {}  # (template, version)
        self._batches: GroupCommit[Arrived, str | Refused] = GroupCommit(
            self._write,
            expired=_expired,
            max_batch=max_batch,
            wait_s=wait_s,
            timeout_s=timeout_s,
            until_as_many=True,
        )
        # Work that can wait (the access lines of the clicks answered), run in the event
        # loop while a batch's statement waits for the database (`_write_on`).
        self._meanwhile = meanwhile
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def busy(self) -> bool:
        """Whether clicks are being written or wait for their batch."""
        return self._batches.busy

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._batches.start()

    async def stop(self) -> None:
        await self._batches.stop()
        self._drop()

    async def follow(self, click: Click) -> str | Refused:
        """Record the click (dated now) and return the URL to redirect to, once stored; or
        why there is none (then nothing is recorded). Raises what the write raised."""
        return await self._batches.submit(Arrived(click, self._clock()))

    def _write(self, batch: list[Arrived]) -> Sequence[str | Refused | Exception]:
        try:
            return self._write_on(self._connected(), batch)
        except Exception as exc:
            # Whatever failed, the batch is written again click by click from the database
            # (engine/store/group_commit.py); a lost connection (the database restarted,
            # which the pool's check would have caught) is replaced, and the batch written
            # again on the new one at once.
            if not (isinstance(exc, DBAPIError) and exc.connection_invalidated):
                raise
            self._drop()
            return self._write_on(self._connected(), batch)

    def _connected(self) -> Connection:
        if self._connection is None:
            self._connection = self._engine.connect()
        return self._connection

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _write_on(
        self, connection: Connection, batch: list[Arrived]
    ) -> Sequence[str | Refused | Exception]:
        transaction = connection.begin()
        try:
            results = self._record(connection, batch)
        except BaseException:
            transaction.rollback()
            raise
        try:
            transaction.commit()
        except DBAPIError:
            # The commit was sent: whether the database applied it is not known (the
            # connection may have dropped after it did). Written again, the batch could be
            # stored twice; its clicks are answered "try again" instead, none rewritten.
            self._drop()
            return [_unknown()] * len(batch)
        return results

    def _record(self, connection: Connection, batch: list[Arrived]) -> list[str | Refused]:
        # The batch's messages and the scanner rule's window in one read: the window
        # from `burst` before the earliest click, as `record_many` would read it.
        seen = click_store.messages(
            connection,
            {a.click.message_id for a in batch},
            since=min(a.at for a in batch) - self._burst,
            until=max(a.at for a in batch),
        )
        results: list[str | Refused] = []
        accepted: list[click_store.ClickIn] = []
        for arrived in batch:
            click = arrived.click
            message = seen.get(click.message_id)
            found = None
            if message is not None and message.version is not None:
                urls = self._urls(connection, message.template, message.version)
                found = links.Targets(message.supporter_id, urls)
            result = target(click, found, secret=self._secret, donation_url=self._donation_url)
            results.append(result)
            if found is not None and not isinstance(result, Refused):
                accepted.append(
                    click_store.ClickIn(
                        click.message_id, click.position, found.supporter_id, arrived.at
                    )
                )
        # The event loop is idle until this batch is answered: its waiting work runs
        # now, while the statement runs. Scheduled as the batch went to this thread, it
        # held the interpreter the thread needed to start, 0.8 ms a batch of 32 on
        # PostgreSQL (bench/README.md).
        if self._meanwhile is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._meanwhile)
        click_store.record_many(connection, accepted, burst=self._burst, seen=seen)
        return results

    def _urls(self, connection: Connection, template: str, version: str) -> dict[int, str]:
        known = self._links.get((template, version))
        if known is None:
            known = self._links[(template, version)] = links.urls(connection, template, version)
        return known


def _unknown() -> Unavailable:
    return Unavailable(
        "the click may not have been recorded; try again",
        hint="the connection to the database dropped as the click was committed",
    )


def _expired() -> Unavailable:
    return Unavailable(
        "the click could not be recorded in time; try again",
        hint="the database is slow or unreachable",
    )
