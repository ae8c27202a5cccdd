"""SendGrid transport bench: 140,000 thank-you emails to the local SendGrid stand-in.

Transport only (no database, no rendering): the messages of each dispatcher claim are
built untimed, then `SendGridTransport.send` is timed on them (planning, body building,
JSON, HTTP and classification), with the server in another process so that it does not
share our GIL.
Also measured: building one 1,000-personalisation request body with the SDK's `Mail`
helpers against the plain dicts the transport uses.

    .venv/bin/python -m bench.sendgrid_bench [--messages 140000] [--sizes 1000,500,250]
        [--concurrency 1,4] [--validate]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sendgrid.helpers.mail import (
    Category,
    Content,
    CustomArg,
    From,
    Header,
    Mail,
    Personalization,
    Substitution,
    To,
)

from bench.stand_in import sendgrid_stand_in
from engine.send import sendgrid_requests
from engine.send.sendgrid_api import SendGridTransport
from engine.send.transport import OutgoingMessage
from tests.fakes.messages import HTML, thank_you
from tests.fakes.sendgrid_server import API_KEY

# MJML writes nested tables, one tag a line: pad the sample to a realistic 20 KB.
_ROW = (
    '<tr>\n<td align="left" style="font-size:0px;padding:10px 25px;word-break:break-word;">\n'
    '<div style="font-family:Helvetica,Arial,sans-serif;font-size:16px;line-height:1.5;'
    'text-align:left;color:#222222;">Un paragraphe de la campagne.</div>\n</td>\n</tr>\n'
)
LARGE_HTML = HTML.replace("</body>", _ROW * 75 + "</body>")


def build(start: int, stop: int) -> list[OutgoingMessage]:
    """Skeleton + substitutions, as the dispatcher renders for SendGrid."""
    return [thank_you(i, html=LARGE_HTML) for i in range(start, stop)]


def sdk_body(messages: Sequence[OutgoingMessage]) -> dict[str, Any]:
    first = messages[0]
    mail = Mail()
    mail.from_email = From(first.sender.email, first.sender.name)
    mail.subject = first.subject
    mail.content = [Content("text/plain", first.text), Content("text/html", first.html)]
    mail.category = [Category(c) for c in first.categories]
    for index, message in enumerate(messages):
        personalisation = Personalization()
        personalisation.add_to(To(message.to.email, message.to.name))
        for key, value in message.substitutions.items():
            personalisation.add_substitution(Substitution(key, value))
        for key, value in message.headers.items():
            personalisation.add_header(Header(key, value))
        for key, value in message.all_custom_args.items():
            personalisation.add_custom_arg(CustomArg(key, value))
        mail.add_personalization(personalisation, index)
    body: dict[str, Any] = mail.get()
    return body


def _median_ms(build: Callable[[], object], repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        build()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def bench_building(repeats: int = 15) -> None:
    messages = build(0, 1000)
    now = datetime.now(UTC)
    plain = _median_ms(lambda: sendgrid_requests.body(messages, now=now), repeats)
    sdk = _median_ms(lambda: sdk_body(messages), repeats)
    size = len(sendgrid_requests.encode(sendgrid_requests.body(messages, now=now)))
    print(f"build one 1,000-personalisation body: plain dicts {plain:.1f} ms, SDK {sdk:.1f} ms")
    print(f"  body size {size / 1e6:.2f} MB")


def bench_sending(count: int, batch_size: int, concurrency: int, validate: bool) -> float:
    with sendgrid_stand_in(validate=validate) as stand_in:
        url = stand_in.url
        transport = SendGridTransport(
            API_KEY, host=url, batch_size=batch_size, timeout=60, concurrency=concurrency
        )
        # One call per dispatcher claim of `concurrency` requests' worth of messages, built
        # just before (untimed), as the dispatcher renders each claim.
        claim = batch_size * concurrency
        elapsed = 0.0
        cpu = 0.0  # this process's: on a loaded machine, wall time is mostly waiting
        accepted = 0
        for start in range(0, count, claim):
            messages = build(start, min(count, start + claim))
            started, started_cpu = time.perf_counter(), time.process_time()
            results = transport.send(messages)
            elapsed += time.perf_counter() - started
            cpu += time.process_time() - started_cpu
            accepted += sum(r.state == "accepted" for r in results)
        transport.close()
        requests, received = stand_in.stop()
    assert accepted == received == count, (accepted, received, count)
    mode = "validating" if validate else "not validating"
    print(
        f"send {count:,} (skeleton + substitutions) in requests of {batch_size}, "
        f"{concurrency} in flight "
        f"({requests} requests, server {mode}): "
        f"{elapsed:.1f} s, {count / elapsed:,.0f} messages/s; "
        f"transport CPU {cpu:.2f} s, {cpu / count * 1e6:.1f} µs a message"
    )
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=140_000)
    parser.add_argument("--sizes", default="1000,500,250")
    parser.add_argument("--concurrency", default="1,4")
    parser.add_argument("--repeat", type=int, default=3, help="report the median of N runs")
    parser.add_argument("--validate", action=argparse.BooleanOptionalAction, default=False)
    arguments = parser.parse_args()
    bench_building()
    for concurrency in (int(c) for c in arguments.concurrency.split(",")):
        for size in (int(s) for s in arguments.sizes.split(",")):
            runs = [
                bench_sending(arguments.messages, size, concurrency, arguments.validate)
                for _ in range(arguments.repeat)
            ]
            print(f"  median of {len(runs)}: {statistics.median(runs):.1f} s")


if __name__ == "__main__":
    main()
