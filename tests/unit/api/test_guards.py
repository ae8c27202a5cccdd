"""The guards as an ASGI server sees them: a body is counted while it arrives and refused
at the cap without being read whole; origins are compared as browsers send them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from engine.api.accesslog import logged_path
from engine.api.guards import Guards, allowed_origins, origin_of
from engine.api.ratelimit import TokenBuckets, client_key
from engine.config import Settings

CHUNK = 64 * 1024


class Upload:
    """A client sending `chunks` chunks, counting how many the server pulled."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self.pulled = 0

    async def receive(self) -> Message:
        self.pulled += 1
        more = self.pulled < self.chunks
        return {"type": "http.request", "body": b"x" * CHUNK, "more_body": more}


async def reads_all(scope: Scope, receive: Receive, send: Send) -> None:
    """The route: reads the whole body like a webhook does, then answers 200."""
    body = await Request(scope, receive).body()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(len(body)).encode()})


def serve(guards: Guards, scope: Scope, upload: Upload) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(guards(scope, upload.receive, send))
    return sent


def http(path: str, headers: dict[str, str] | None = None) -> Scope:
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(k.encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("192.0.2.1", 5000),
    }


def guards(**settings: Any) -> Guards:
    clock = lambda: datetime(2026, 5, 13, tzinfo=UTC)  # noqa: E731
    configured = Settings(**settings)
    sign_in = TokenBuckets(configured.login_rate_per_minute)
    return Guards(reads_all, settings=configured, clock=clock, sign_in=sign_in)


def test_a_streamed_webhook_body_over_the_cap_is_refused_without_being_read_whole() -> None:
    # Given a 1 MB cap on webhooks and a client streaming 100 chunks of 64 KB (no length)
    upload = Upload(chunks=100)

    # When it posts to the webhook
    sent = serve(guards(webhook_max_bytes=1 << 20), http("/webhooks/sendgrid"), upload)

    # Then the answer is a 413 in JSON, sent as soon as the cap was passed
    assert sent[0]["status"] == 413
    assert orjson.loads(sent[1]["body"])["error"] == "request body over 1,048,576 bytes"
    assert len(sent) == 2  # the route's own answer (to a "disconnect") is dropped
    assert upload.pulled == 17  # 16 chunks fill the cap; the 17th passes it; no more read


def test_a_declared_length_over_the_cap_is_refused_before_any_byte_is_read() -> None:
    upload = Upload(chunks=1)
    scope = http("/api/petitions/p/signatures", {"content-length": str(10 << 20)})

    sent = serve(guards(sign_max_bytes=16_384), scope, upload)

    assert sent[0]["status"] == 413
    assert upload.pulled == 0


def test_a_body_under_the_cap_reaches_the_route_whole() -> None:
    upload = Upload(chunks=3)

    sent = serve(guards(webhook_max_bytes=1 << 20), http("/webhooks/sendgrid"), upload)

    assert sent[0]["status"] == 200
    assert sent[1]["body"] == str(3 * CHUNK).encode()


def test_other_routes_have_their_own_cap() -> None:
    upload = Upload(chunks=3)

    sent = serve(guards(body_max_bytes=CHUNK), http("/dashboard/templates/x"), upload)

    assert sent[0]["status"] == 413


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://Petition.Example.org/", "https://petition.example.org"),
        ("https://petition.example.org:443/signer?x=1", "https://petition.example.org"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("null", ""),
        ("", ""),
    ],
)
def test_origins_are_compared_as_browsers_send_them(url: str, origin: str) -> None:
    assert origin_of(url) == origin


def test_the_allow_list_is_the_listed_sites_and_our_own() -> None:
    settings = Settings(
        base_url="https://m.example.org/", allowed_origins=" https://ngo.example , ,bad"
    )

    assert allowed_origins(settings) == {"https://ngo.example", "https://m.example.org"}


def test_the_logged_path_never_holds_a_token_or_an_address() -> None:
    class Route:
        path = "/u/{token}"

    class Named:
        path = "/api/petitions/{slug}/things/{who}"

    unrouted = {"path": "/rights/AbC_dEf123-xyzXYZ0123/zoé@example.org/stop-it"}

    assert logged_path({"route": Route(), "path_params": {"token": "abc"}}) == "/u/{token}"
    assert (
        logged_path({"route": Named(), "path_params": {"slug": "stop-it", "who": "a@b.org"}})
        == "/api/petitions/stop-it/things/{who}"
    )
    assert logged_path(unrouted) == "/rights/…/…/stop-it"


@pytest.mark.parametrize(
    ("client", "counted_as"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("testclient", "testclient"),
    ],
)
def test_rate_limits_count_an_ipv6_client_by_its_64_prefix(client: str, counted_as: str) -> None:
    assert client_key({"client": (client, 1)}) == counted_as
