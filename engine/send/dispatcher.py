"""The dispatch pass: claim due outbox rows, look again, render, send, record.

Three transactions per batch, so that a crash at any point neither loses nor doubles a
message:
1. claim (rows become `sending` under this worker's name) and the last look
   (engine/send/last_look.py: consent, suppression, erasure → `suppressed`; quiet hours,
   frequency cap → queued later), committed before anything leaves;
2. no transaction while rendering and while the transport talks to the provider;
3. the results: sent with the provider id, retried later with backoff, failed with the
   reason, or ambiguous (SendGrid: the request left, no answer came).
A worker killed between 1 and 3 leaves `sending` rows that a later pass recovers once
their lease is over (engine.store.claims.recover_stale).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from jinja2 import TemplateError
from sqlalchemy.orm import Session

from engine import heap
from engine.errors import Invalid, MobiliseError
from engine.render.compiled import CompiledTemplate
from engine.render.library import TemplateLibrary
from engine.send import ambiguity, compose, last_look
from engine.send.compose import Envelope
from engine.send.retries import RetryPolicy
from engine.send.transport import (
    Accepted,
    Ambiguous,
    AuthFailed,
    OutgoingMessage,
    Permanent,
    SendResult,
    Transient,
    Transport,
)
from engine.store import claims, links
from engine.store.claims import Claimed, Outcome
from engine.store.journeys import Loaded

log = logging.getLogger("mobilise.dispatch")

# `with transaction() as session:` commits at the end of the block.
Transaction = Callable[[], AbstractContextManager[Session]]


class SendingRefused(MobiliseError):
    """The provider refused our credentials: the pass stopped, the batch is queued again."""

    status_code = 503


@dataclass(frozen=True)
class Policy:
    envelope: Envelope
    retry: RetryPolicy = RetryPolicy()
    # A claim older than this belongs to a dead worker (longer than any batch can take).
    lease: timedelta = timedelta(minutes=10)
    # Steps later than this (downtime, a restore) wait for a manager's approval.
    overdue_after: timedelta = timedelta(hours=24)
    # How long an ambiguous SendGrid send waits for the provider's events.
    ambiguity_wait: timedelta = ambiguity.DEFAULT_WAIT
    # At most this many emails leave per rolling hour (None: no throttle).
    hourly_limit: int | None = None
    batch_size: int | None = None  # default: the transport's


@dataclass
class Report:
    batches: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    recovered: int = 0
    held: int = 0

    def add(self, outcomes: list[Outcome]) -> None:
        self.outcomes.update(o.status for o in outcomes)


@dataclass
class _Pass:
    transport: Transport
    library: TemplateLibrary
    policy: Policy
    now: datetime
    worker_id: str
    jitter: Callable[[], float]
    loaded: dict[int, Loaded] = field(default_factory=dict)
    compiled: dict[str, CompiledTemplate | Invalid] = field(default_factory=dict)
    remembered: set[str] = field(default_factory=set)


def dispatch(
    transaction: Transaction,
    *,
    transport: Transport,
    library: TemplateLibrary,
    policy: Policy,
    now: datetime,
    worker_id: str,
    jitter: Callable[[], float],
    max_batches: int | None = None,
    stopping: Callable[[], bool] = lambda: False,
) -> Report:
    """Send everything due at `now`, batch by batch; raises SendingRefused on 401/403.

    `stopping` is asked before each batch: a process shutting down finishes the batch in
    hand and leaves the rest queued for the next pass, rather than draining the queue.

    While the transport carries one batch (a provider answers a 1,000-email request in
    tens to hundreds of milliseconds), the next is claimed, looked at and rendered: one
    batch at most is in flight, and its answer is in before the next one leaves."""
    run = _Pass(transport, library, policy, now, worker_id, jitter)
    report = Report()
    with transaction() as session:
        report.recovered = claims.recover_stale(
            session,
            now=now,
            lease=policy.lease,
            idempotent=not settles_by_events(transport),
        )
        _settle_ambiguous(session, policy, now)
        report.held = claims.hold_overdue(session, now=now, overdue_after=policy.overdue_after)
    size = policy.batch_size or transport.batch_size
    # The results of a batch are written in the transaction that claims a later one (one
    # commit a batch fewer). Losing them to a crash is the same as a crash before they
    # were written: the rows stay `sending` until their lease is over.
    pending: list[Outcome] = []
    flight: _Flight | None = None
    with heap.batch_pace(), ThreadPoolExecutor(1, thread_name_prefix="mobilise-send") as sender:
        try:
            while (max_batches is None or report.batches < max_batches) and not stopping():
                carried, pending = pending, []
                try:
                    with transaction() as session, claims.counted_at_the_end(session) as sent:
                        claims.record(session, carried, worker_id=worker_id, counted_later=sent)
                        in_flight = len(flight.rows) if flight is not None else 0
                        limit = _throttled(session, policy, now, size, in_flight)
                        claimed = claims.claim(session, worker_id=worker_id, now=now, limit=limit)
                        if not claimed:
                            break
                        ready, decided = last_look.look(
                            session,
                            claimed,
                            flight.let_through if flight else {},
                            known=run.loaded,
                            now=now,
                        )
                        claims.record(session, decided, worker_id=worker_id)
                except Exception:
                    # Rolled back with the claim: the earlier batches' results still go in.
                    pending = carried
                    raise
                report.batches += 1
                report.add(decided)
                messages, rows, failed = _render(run, ready)
                if _new_versions(run, messages):
                    # Before anything leaves: a click may come back before the results
                    # are stored.
                    with transaction() as session:
                        _remember_links(run, session, messages)
                if flight is not None:
                    landed, flight = _land(run, flight, report), None
                    pending.extend(landed.outcomes)
                    if landed.stop:
                        # Claimed, not offered: queued again, no attempt counted.
                        given_back = _given_back(rows, now, landed.refused) + failed
                        pending.extend(given_back)
                        report.add(given_back)
                        _stopped(landed.refused)
                        break
                flight = _Flight(
                    rows, failed, sender.submit(_send, transport, messages), ready.let_through
                )
        finally:
            if flight is not None:
                landed = _land(run, flight, report)
                pending.extend(landed.outcomes)
                _record_alone(transaction, pending, worker_id)
                _stopped(landed.refused)
            else:
                _record_alone(transaction, pending, worker_id)
    return report


@dataclass
class _Flight:
    """A batch the transport is carrying: its rows, in the order of the messages, and
    the rows that failed before leaving (a template that does not render)."""

    rows: list[Claimed]
    failed: list[Outcome]
    results: Future[list[SendResult]]
    # Campaign emails it carries, by supporter: not recorded as sent yet, they still
    # count towards the frequency cap of the batch looked at meanwhile.
    let_through: Mapping[int, list[datetime]]


@dataclass
class _Landed:
    outcomes: list[Outcome]
    # The transport stopped offering (429, 5xx, a timeout) or our credentials were
    # refused: the rest of the queue waits for the next pass.
    stop: bool
    refused: str | None


def _send(transport: Transport, messages: list[OutgoingMessage]) -> list[SendResult]:
    return transport.send(messages) if messages else []


def _land(run: _Pass, flight: _Flight, report: Report) -> _Landed:
    results = flight.results.result()
    outcomes, refused = _outcomes(run, flight.rows, results)
    outcomes = flight.failed + outcomes
    report.add(outcomes)
    stop = refused is not None or any(isinstance(r, Transient) and not r.attempted for r in results)
    return _Landed(outcomes, stop, refused)


def _given_back(rows: list[Claimed], now: datetime, refused: str | None) -> list[Outcome]:
    reason = "auth-failed" if refused is not None else "not-offered"
    return [Outcome(row.id, "queued", reason, due_at=now, attempts_delta=-1) for row in rows]


def _stopped(refused: str | None) -> None:
    if refused is not None:
        log.error("dispatch stopped: %s", refused)
        raise SendingRefused(refused, hint="check the API key or the relay credentials")


def _record_alone(transaction: Transaction, outcomes: list[Outcome], worker_id: str) -> None:
    """Write results that no further claim will carry."""
    if outcomes:
        with transaction() as session:
            claims.record(session, outcomes, worker_id=worker_id)


def settles_by_events(transport: Transport) -> bool:
    """SendGrid reports what it took (events): an interrupted send waits for them.

    The file transport is idempotent by message id, and SMTP has no event feed: their
    interrupted sends are queued again (for SMTP a rare duplicate, which RFC 5321
    prefers to a loss; docs/operations.md)."""
    return transport.name == "sendgrid"


def _settle_ambiguous(session: Session, policy: Policy, now: datetime) -> None:
    rows = claims.ambiguous(session)
    if not rows:
        return
    since = {str(i): at for i, at, _ in rows}
    seen = {str(i) for i, _, event in rows if event}
    settled = ambiguity.settle(since, seen, now=now, wait=policy.ambiguity_wait)
    claims.settle_ambiguous(
        session,
        confirmed=[int(i) for i in settled.confirmed],
        resend=[int(i) for i in settled.resend],
        now=now,
    )


def _throttled(session: Session, policy: Policy, now: datetime, size: int, in_flight: int) -> int:
    if policy.hourly_limit is None:
        return size
    # A batch in flight counts as sent: it may be, by the time this one leaves.
    used = claims.sent_since(session, now - timedelta(hours=1)) + in_flight
    # Rows past the limit stay queued (deferred, never dropped) until the hour rolls on.
    return max(0, min(size, policy.hourly_limit - used))


def _compiled(run: _Pass, template: str) -> CompiledTemplate | Invalid:
    found = run.compiled.get(template)
    if found is None:
        try:
            found = run.library.get(template)
        except Invalid as exc:
            found = exc
        run.compiled[template] = found
    return found


def _render(
    run: _Pass, batch: last_look.Batch
) -> tuple[list[OutgoingMessage], list[Claimed], list[Outcome]]:
    ready, facts = batch.ready, batch.facts
    messages: list[OutgoingMessage] = []
    rows: list[Claimed] = []
    failed: list[Outcome] = []
    # Grouped by template (and so by version and variant): the transport batches by it.
    ready.sort(key=lambda r: (r.row.template, r.row.variant or "", r.row.id))
    for item in ready:
        compiled = _compiled(run, item.row.template)
        if isinstance(compiled, Invalid):
            failed.append(Outcome(item.row.id, "failed", f"template: {compiled.message}"))
            continue
        try:
            message = compose.message(
                item.row,
                item.person,
                facts,
                compiled,
                run.policy.envelope,
                skeleton=run.transport.substitutes,
            )
        except Exception as exc:
            kind = (
                "" if isinstance(exc, TemplateError | MobiliseError) else f"{type(exc).__name__} "
            )
            failed.append(Outcome(item.row.id, "failed", f"render: {kind}{exc}"))
            continue
        messages.append(message)
        rows.append(item.row)
    return messages, rows, failed


def _outcomes(
    run: _Pass, rows: list[Claimed], results: list[SendResult]
) -> tuple[list[Outcome], str | None]:
    outcomes: list[Outcome] = []
    refused: str | None = None
    versions = {r.id: run.compiled[r.template] for r in rows}
    for row, result in zip(rows, results, strict=True):
        compiled = versions[row.id]
        version = compiled.version if isinstance(compiled, CompiledTemplate) else None
        if isinstance(result, Accepted):
            outcomes.append(
                Outcome(
                    row.id,
                    "sent",
                    provider_id=result.provider_id,
                    template_version=version,
                    sent_at=run.now,
                )
            )
        elif isinstance(result, Transient):
            outcomes.append(_retry(run, row, result))
        elif isinstance(result, Permanent):
            outcomes.append(Outcome(row.id, "failed", result.reason, template_version=version))
        elif isinstance(result, Ambiguous):
            outcomes.append(Outcome(row.id, "ambiguous", result.reason, template_version=version))
        elif isinstance(result, AuthFailed):
            refused = result.reason
            outcomes.append(
                Outcome(row.id, "queued", "auth-failed", due_at=run.now, attempts_delta=-1)
            )
    return outcomes, refused


def _retry(run: _Pass, row: Claimed, result: Transient) -> Outcome:
    attempts = row.attempts if result.attempted else row.attempts - 1
    later = run.policy.retry.next_attempt(
        result, attempts=attempts, now=run.now, jitter=run.jitter()
    )
    delta = 0 if result.attempted else -1
    if later is None:
        return Outcome(row.id, "failed", f"gave up: {result.reason}", attempts_delta=delta)
    return Outcome(row.id, "queued", result.reason, due_at=later, attempts_delta=delta)


def _new_versions(run: _Pass, messages: list[OutgoingMessage]) -> bool:
    return any(m.template_version not in run.remembered for m in messages)


def _remember_links(run: _Pass, session: Session, messages: list[OutgoingMessage]) -> None:
    used = {m.template_version for m in messages} - run.remembered
    for compiled in run.compiled.values():
        if isinstance(compiled, CompiledTemplate) and compiled.version in used:
            links.remember(session, compiled.name, compiled.version, compiled.links)
    run.remembered |= used
