"""SendGrid v3 mail send through the official SDK, with every answer classified.

| answer                                  | result for the request's messages                |
|-----------------------------------------|--------------------------------------------------|
| 2xx                                     | Accepted, provider id = X-Message-Id             |
| 400 / 413 naming personalisations       | those Permanent, the others sent again           |
| 400 / 413 naming shared content         | all Permanent (splitting cannot help)            |
| 400 / 413 naming nothing                | split in halves until the bad one is alone       |
| 429                                     | Transient, retry after X-RateLimit-Reset         |
| 5xx                                     | Transient                                        |
| 401 / 403                               | AuthFailed: stop sending and alert               |
| other 4xx                               | Permanent                                        |
| no connection (refused, DNS, TLS setup) | Transient: the request never left                |
| timeout or reset after sending          | Ambiguous: wait for events before resending      |

After a 429, 5xx, auth failure, ambiguous answer or other 4xx, the rest of the batch is
not offered: its messages come back Transient with `attempted=False` (or AuthFailed).
"""

from __future__ import annotations

import http.client
import json
import re
import urllib.error
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sendgrid
from python_http_client import exceptions as http_errors

from engine.config import Settings
from engine.send import sendgrid_requests
from engine.send.sendgrid_requests import DEFAULT_TRACKING, MAX_PERSONALISATIONS
from engine.send.transport import (
    Accepted,
    Ambiguous,
    AuthFailed,
    OutgoingMessage,
    Permanent,
    SendResult,
    Transient,
)

_PERSONALISATION_FIELD = re.compile(r"personalizations\.(\d+)(?:\.|$)")
_SPLITTABLE = (400, 413)
_JSON_UTF8 = "application/json; charset=utf-8"


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Answer:
    status: int  # 0 when no HTTP answer came back
    headers: Mapping[str, str]
    body: bytes
    reason: str = ""
    left: bool = True  # whether the request may have reached SendGrid


class SendGridTransport:
    name = "sendgrid"
    substitutes = True

    def __init__(
        self,
        api_key: str,
        *,
        host: str = "https://api.sendgrid.com",
        timeout: float = 30.0,
        batch_size: int = MAX_PERSONALISATIONS,
        clock: Callable[[], datetime] = _utc_now,
        tracking: Mapping[str, Any] = DEFAULT_TRACKING,
        concurrency: int = 1,
    ) -> None:
        self.api_key = api_key
        self.host = host
        self.concurrency = max(1, concurrency)
        self._pool: ThreadPoolExecutor | None = None
        self.timeout = timeout
        self.batch_size = batch_size
        self.clock = clock
        self.tracking = tracking

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> SendGridTransport:
        return cls(settings.sendgrid_api_key, host=settings.sendgrid_api_host, **options)

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        now = self.clock()
        results: dict[int, SendResult] = {}
        ready: list[OutgoingMessage] = []
        positions: list[int] = []  # position in `messages` of each ready message
        for position, message in enumerate(messages):
            checked = sendgrid_requests.precheck(message, now=now)
            if isinstance(checked, OutgoingMessage):
                ready.append(checked)
                positions.append(position)
            else:
                results[position] = checked
        pending = [
            [positions[i] for i in request.positions]
            for request in sendgrid_requests.plan(ready, batch_size=self.batch_size)
        ]
        by_position = dict(zip(positions, ready, strict=True))
        # A stack: bisected halves go on top so that they are settled before moving on.
        pending.reverse()
        while pending:
            # A wave of up to `concurrency` requests in flight; answers are settled in
            # order, and a halt leaves whatever was not yet offered untouched.
            wave = [pending.pop() for _ in range(min(self.concurrency, len(pending)))]
            batches = [[by_position[p] for p in group] for group in wave]
            bodies = [
                sendgrid_requests.body(batch, now=now, tracking=self.tracking) for batch in batches
            ]
            answers = self._post_all(bodies)
            halt = None
            for group, batch, answer in zip(wave, batches, answers, strict=True):
                halt = self._settle(group, batch, answer, results, pending, now) or halt
            if halt is not None:
                for rest in pending:
                    for position in rest:
                        results[position] = halt(messages[position].message_id)
                break
        return [results[position] for position in range(len(messages))]

    def _post_all(self, bodies: list[dict[str, Any]]) -> list[_Answer]:
        """Post concurrently: the requests overlap SendGrid's latency."""
        if len(bodies) == 1:
            return [self._post(bodies[0])]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="sendgrid")
        return list(self._pool.map(self._post, bodies))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _settle(
        self,
        group: list[int],
        batch: list[OutgoingMessage],
        answer: _Answer,
        results: dict[int, SendResult],
        pending: list[list[int]],
        now: datetime,
    ) -> Callable[[str], SendResult] | None:
        """Record the results of one request; return how to settle the rest if we stop."""
        status = answer.status
        if 200 <= status < 300:
            provider_id = answer.headers.get("X-Message-Id", "")
            for position, message in zip(group, batch, strict=True):
                results[position] = Accepted(message.message_id, provider_id)
            return None
        if status in _SPLITTABLE:
            self._isolate(group, batch, answer, results, pending)
            return None
        if status == 0 and not answer.left:
            reason = f"not sent: {answer.reason}"
            self._all(group, batch, results, lambda m: Transient(m, reason))
            return lambda m: Transient(m, f"not offered: {reason}", None, False)
        if status == 0:
            reason = f"no answer after sending: {answer.reason}"
            self._all(group, batch, results, lambda m: Ambiguous(m, reason))
            return lambda m: Transient(
                m, "not offered: an earlier request is ambiguous", None, False
            )
        if status in (401, 403):
            reason = f"SendGrid refused the API key ({status}): stop sending and alert"
            return self._all(group, batch, results, lambda m: AuthFailed(m, reason))
        if status == 429 or status >= 500:
            retry_after = _retry_after(answer.headers, now)
            reason = f"SendGrid answered {status}: {_messages(answer.body)}"
            self._all(group, batch, results, lambda m: Transient(m, reason, retry_after))
            return lambda m: Transient(m, f"not offered after a {status}", retry_after, False)
        reason = f"SendGrid answered {status}: {_messages(answer.body)}"
        self._all(group, batch, results, lambda m: Permanent(m, reason))
        return lambda m: Transient(m, f"not offered after a {status}", None, False)

    @staticmethod
    def _all(
        group: list[int],
        batch: list[OutgoingMessage],
        results: dict[int, SendResult],
        outcome: Callable[[str], SendResult],
    ) -> Callable[[str], SendResult]:
        for position, message in zip(group, batch, strict=True):
            results[position] = outcome(message.message_id)
        return outcome

    @staticmethod
    def _isolate(
        group: list[int],
        batch: list[OutgoingMessage],
        answer: _Answer,
        results: dict[int, SendResult],
        pending: list[list[int]],
    ) -> None:
        """A refused request: find its bad personalisations without failing the others."""
        errors = _errors(answer.body)
        named: dict[int, str] = {}
        shared, unnamed = [], []
        for error in errors:
            where = str(error.get("field") or "")
            found = _PERSONALISATION_FIELD.match(where)
            if found and int(found.group(1)) < len(batch):
                named.setdefault(int(found.group(1)), str(error.get("message", "")))
            elif where in ("", "null") or where.startswith("personalizations"):
                unnamed.append(error)
            else:
                shared.append(error)
        if shared or len(batch) == 1:
            reason = f"SendGrid refused the message ({answer.status}): {_messages(answer.body)}"
            for position, message in zip(group, batch, strict=True):
                results[position] = Permanent(message.message_id, reason)
        elif named and not unnamed:
            for index, text in named.items():
                results[group[index]] = Permanent(
                    batch[index].message_id, f"SendGrid refused the recipient: {text}"
                )
            rest = [p for i, p in enumerate(group) if i not in named]
            if rest:
                pending.append(rest)
        else:
            half = len(group) // 2
            pending.extend([group[half:], group[:half]])

    def _post(self, request: dict[str, Any]) -> _Answer:
        # One SDK client per request: a client's headers are one dict that every call
        # updates, so clients are not shared between the threads of `_post_all`.
        client = sendgrid.SendGridAPIClient(self.api_key, host=self.host)
        try:
            # The body goes as the JSON text orjson made (twenty times faster than the
            # SDK's json.dumps of the dict): the SDK sends a str body as it is when the
            # content type is not exactly "application/json".
            response = client.client.mail.send.post(
                request_body=sendgrid_requests.encode(request).decode(),
                request_headers={"Content-Type": _JSON_UTF8},
                timeout=self.timeout,
            )
        except http_errors.HTTPError as error:
            return _Answer(error.status_code, _headers(error.headers), error.body or b"")
        except urllib.error.URLError as error:
            # urllib wraps failures to connect or to write the request: nothing arrived.
            return _Answer(0, {}, b"", reason=repr(error.reason), left=False)
        except (OSError, http.client.HTTPException) as error:
            # Raised while waiting for or reading the answer: the request was sent.
            return _Answer(0, {}, b"", reason=repr(error))
        return _Answer(response.status_code, _headers(response.headers), response.body or b"")


def _headers(raw: Any) -> dict[str, str]:
    return {str(k).title(): str(v) for k, v in raw.items()} if raw is not None else {}


def _retry_after(headers: Mapping[str, str], now: datetime) -> datetime | None:
    reset = headers.get("X-Ratelimit-Reset")
    if reset and reset.isdigit():
        return max(now, datetime.fromtimestamp(int(reset), UTC))
    delay = headers.get("Retry-After")
    if delay and delay.isdigit():
        return now + timedelta(seconds=int(delay))
    return None


def _errors(body: bytes) -> list[dict[str, Any]]:
    try:
        decoded = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return []
    errors = decoded.get("errors") if isinstance(decoded, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def _messages(body: bytes) -> str:
    texts = [str(e.get("message", "")) for e in _errors(body)]
    return "; ".join(t for t in texts if t)[:500] or body[:200].decode("utf-8", "replace")
