"""A local stand-in for `POST /v3/mail/send`, strict where SendGrid is strict.

Every body is validated against `components.requestBodies.PostMailSend` of the OpenAPI
schema in `tests/reference/sendgrid/` (SendGrid's, MIT, copied in the repository), plus the rules
the schema cannot say: one address at most once per request, `send_at` at most 72 h
ahead, text/plain before text/html, string custom_args. Faults are queued and consumed
one per request. The server binds 127.0.0.1 on a free port and stops at the end of its
`with` block (the pytest fixture's teardown).
"""

from __future__ import annotations

import itertools
import json
import secrets
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import yaml
from jsonschema import Draft202012Validator

from tests.reference import SENDGRID

SCHEMA_POINTER = "#/components/requestBodies/PostMailSend/content/application~1json/schema"
API_KEY = "SG.test-key"


@lru_cache(maxsize=1)
def mail_send_validator() -> Draft202012Validator:
    """The request-body schema, with its `#/components/...` references resolved in place."""
    document = yaml.safe_load((SENDGRID / "tsg_mail_v3.yaml").read_text(encoding="utf-8"))
    # The whole OpenAPI document is the root resource so that its absolute JSON pointers
    # resolve; its other keys are unknown keywords to JSON Schema and ignored.
    root = {**document, "$ref": SCHEMA_POINTER}
    return Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)


@dataclass(frozen=True)
class Reply:
    """Answer with this status instead of processing the request."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    errors: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Delay:
    """Hold the answer for `seconds` (longer than the client's timeout to make it give up)."""

    seconds: float
    processed: bool = True  # the request is accepted and recorded before the wait


@dataclass(frozen=True)
class Reset:
    """Read the request, then reset the connection without answering."""

    processed: bool = True


Fault = Reply | Delay | Reset


@dataclass
class Recorded:
    body: dict[str, Any]
    status: int
    x_message_id: str | None
    errors: list[dict[str, Any]]


@dataclass
class FakeSendGrid:
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    validate: bool = True
    keep_bodies: bool = True  # False for the bench: a long run would hold every body
    accepted_personalisations: int = 0
    bad_addresses: set[str] = field(default_factory=set)
    bad_address_field: bool = True  # name the personalisation in the 400, as SendGrid does
    faults: deque[Fault] = field(default_factory=deque)
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""
    _lock: threading.Condition = field(default_factory=threading.Condition)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _ids: Iterator[int] = field(default_factory=itertools.count)

    @property
    def accepted(self) -> list[Recorded]:
        return [r for r in self.requests if r.status == 202]

    def accepted_message_ids(self) -> list[str]:
        return [
            p["custom_args"]["mobilise_message_id"]
            for r in self.accepted
            for p in r.body["personalizations"]
        ]

    def record(self, recorded: Recorded) -> None:
        with self._lock:
            self.requests.append(recorded)
            if recorded.status == 202:
                self.accepted_personalisations += len(recorded.body.get("personalizations", []))
            self._lock.notify_all()

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> None:
        """Block until `count` requests are recorded (a client may give up before that)."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"{len(self.requests)} requests recorded, {count} expected")

    def next_fault(self) -> Fault | None:
        with self._lock:
            return self.faults.popleft() if self.faults else None

    def check(self, body: Any) -> list[dict[str, Any]]:
        """SendGrid-style errors for a request body; empty when it would be accepted."""
        if not isinstance(body, dict):
            return [{"message": "request body must be a JSON object", "field": None}]
        errors: list[dict[str, Any]] = []
        if self.validate:
            for error in mail_send_validator().iter_errors(body):
                path = ".".join(str(part) for part in error.absolute_path) or None
                errors.append({"message": error.message, "field": path})
        if errors:
            return errors
        return self._rules_beyond_the_schema(body)

    def _rules_beyond_the_schema(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = []
        seen: set[str] = set()
        latest = int((self.clock() + timedelta(hours=72)).timestamp())
        for index, personalisation in enumerate(body["personalizations"]):
            for kind in ("to", "cc", "bcc"):
                for position, recipient in enumerate(personalisation.get(kind, [])):
                    address = recipient["email"].lower()
                    where = f"personalizations.{index}.{kind}.{position}.email"
                    if address in seen:
                        errors.append({"message": f"duplicate address {address}", "field": where})
                    seen.add(address)
                    if address in self.bad_addresses:
                        field_name = where if self.bad_address_field else None
                        errors.append({"message": "Invalid email address", "field": field_name})
            send_at = personalisation.get("send_at", body.get("send_at"))
            if send_at is not None and send_at > latest:
                where = f"personalizations.{index}.send_at"
                errors.append({"message": "send_at more than 72 hours ahead", "field": where})
            for key, value in personalisation.get("custom_args", {}).items():
                if not isinstance(value, str):
                    where = f"personalizations.{index}.custom_args.{key}"
                    errors.append({"message": "custom_args values must be strings", "field": where})
            if "subject" not in personalisation and "subject" not in body:
                where = f"personalizations.{index}.subject"
                errors.append({"message": "a subject is required", "field": where})
        types = [part["type"] for part in body.get("content", [])]
        if "text/plain" in types and types.index("text/plain") != 0:
            errors.append({"message": "text/plain must come first", "field": "content"})
        return errors

    def new_message_id(self) -> str:
        return f"fake{next(self._ids):06d}{secrets.token_hex(6)}"

    @contextmanager
    def running(self) -> Iterator[FakeSendGrid]:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="fake-sendgrid")
        thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            yield self
        finally:
            self._stopping.set()  # releases any delayed answer
            server.shutdown()
            server.server_close()
            thread.join()


def _handler_for(fake: FakeSendGrid) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test output is for the tests."""

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path != "/v3/mail/send":
                self._answer(404, [{"message": "not found", "field": None}])
                return
            if self.headers.get("Authorization") != f"Bearer {API_KEY}":
                self._answer(401, [{"message": "authorization required", "field": None}])
                return
            media_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if media_type != "application/json":
                self._answer(415, [{"message": "Content-Type must be application/json"}])
                return
            fault = fake.next_fault()
            if isinstance(fault, Reply):
                self._answer(fault.status, list(fault.errors), fault.headers)
                return
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                self._answer(400, [{"message": "body is not JSON", "field": None}])
                return
            errors = fake.check(body)
            if errors:
                fake.record(Recorded(body, 400, None, errors))
                self._answer(400, errors)
                return
            message_id = fake.new_message_id()
            kept = body if fake.keep_bodies else {"personalizations": body["personalizations"]}
            if isinstance(fault, Reset | Delay) and not fault.processed:
                fake.record(Recorded(kept, 0, None, []))
            else:
                fake.record(Recorded(kept, 202, message_id, []))
            if not fake.keep_bodies:
                kept.clear()
            if isinstance(fault, Reset):
                # SO_LINGER 0: close() sends RST, as a dropped connection would.
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
                self.close_connection = True
                return
            if isinstance(fault, Delay) and fake._stopping.wait(fault.seconds):
                return
            try:
                self.send_response(202)
                self.send_header("X-Message-Id", message_id)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                pass  # the client gave up

        def _answer(
            self, status: int, errors: list[dict[str, Any]], headers: dict[str, str] | None = None
        ) -> None:
            payload = json.dumps({"errors": errors}).encode()
            try:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the client gave up

    return Handler
