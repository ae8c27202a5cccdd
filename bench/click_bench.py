"""Click redirects over HTTP: ONE server process, load from wrk in another, on loopback.

    apt-get install wrk   # Debian's package
    .venv/bin/python -m bench.click_bench [--backend sqlite|postgresql] [--seconds 10]

A sent campaign first: `mobilise demo --signatures 10000` into a fresh database (six weeks
of the shipped campaign made by the engine itself: 9,700 thank-yous sent, with their
links), then one click token for each of up to 10,000 sent thank-yous (one of its links,
as the email carries it). `mobilise run --workers 1 --no-scheduler` serves them, its
access log written to a file, and `wrk -t1 -c32 -d10s` cycles through the tokens
(bench/clicks.lua). In the same run, the same wrk against a bare Starlette app that
redirects from a dict (`bare_app`), under the same uvicorn settings: the machine's
ceiling for a redirect.

Checks after the run: the clicks recorded equal the 302 lines of the access log (each
302 is a stored click: the server answers after its commit), wrk's answers are within
the connections still in flight when it stopped, and the summary rows equal a recount.
The issue's figure: >= 5,000 clicks/s with p99 < 20 ms.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bench.common import free_port, fresh_database, machine
from bench.signing_bench import cpu_seconds, parse_wrk, wait_ready
from engine.render import tokens
from engine.render.links import DONATION_LINK
from engine.store import counts, links, recounts
from engine.store.db import make_engine, make_sessionmaker
from engine.store.models import Click, OutboxMessage

HERE = Path(__file__).resolve().parent
SECRET = "click-bench-secret-not-for-production-use"
MESSAGES = 10_000
TOKENS_VARIABLE = "CLICK_BENCH_TOKENS"
LOGGED_302 = "path=/c/{token} status=302"


def sent_campaign(url: str) -> None:
    """`mobilise demo --signatures 10000`: the shipped campaign's emails, sent."""
    subprocess.run(
        [sys.executable, "-m", "engine.cli", "demo", "--signatures", "10000", "--force"],
        env=_env(url),
        check=True,
        stdout=subprocess.DEVNULL,
    )


@contextmanager
def campaign(backend: str, given: str | None) -> Iterator[str]:
    if given is not None:
        yield given
        return
    with fresh_database(backend) as url:
        sent_campaign(url)
        yield url


def click_tokens(url: str) -> list[str]:
    """One token for each sent thank-you (up to MESSAGES): one of its plain links, the
    same one each time for a message (two links within seconds would be a scanner's)."""
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            ids = session.scalars(
                select(OutboxMessage.id)
                .where(OutboxMessage.step_id == "thanked", OutboxMessage.status == "sent")
                .order_by(OutboxMessage.id)
                .limit(MESSAGES)
            ).all()
            found = links.targets(session, ids)
    finally:
        engine.dispose()
    made = []
    for message_id, target in sorted(found.items()):
        plain = sorted(p for p, u in target.urls.items() if u != DONATION_LINK)
        if plain:
            made.append(tokens.click_token(SECRET, message_id, plain[message_id % len(plain)]))
    return made


def _env(url: str) -> dict[str, str]:
    return {**os.environ, "MOBILISE_DATABASE_URL": url, "MOBILISE_SECRET_KEY": SECRET}


def bare_app() -> Starlette:
    """A redirect from a dict of the bench's tokens, nothing else (`uvicorn --factory`)."""
    targets = dict.fromkeys(Path(os.environ[TOKENS_VARIABLE]).read_text().split(), "/")

    async def redirect(request: Request) -> Response:
        target = targets.get(request.path_params["token"])
        if target is None:
            return Response(status_code=404)
        return RedirectResponse(target, status_code=302)

    async def health(_request: Request) -> Response:
        return Response("ok")

    return Starlette(routes=[Route("/c/{token}", redirect), Route("/healthz", health)])


@contextmanager
def server(command: list[str], env: dict[str, str], log: Path) -> Iterator[tuple[str, int]]:
    """The server process (its stderr to `log`), its base URL and pid; stopped at the end."""
    port = free_port()
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(base)
            yield base, process.pid
        finally:
            process.terminate()  # uvicorn answers what is in flight, then stops
            process.wait(timeout=30)


def load(
    base: str, pid: int, tokens_file: Path, seconds: int, connections: int
) -> dict[str, float]:
    """wrk against `base`; its figures, the server's CPU seconds and the load average."""
    before = cpu_seconds(pid)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
        + ["-s", str(HERE / "clicks.lua"), base, "--", str(tokens_file)],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    cpu = cpu_seconds(pid) - before
    return parse_wrk(out) | {"cpu": cpu, "load": os.getloadavg()[0]}


def recorded(url: str) -> tuple[int, bool]:
    """(clicks in the database, do the summary rows equal a recount?)."""
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            total = session.scalar(select(func.count()).select_from(Click)) or 0
            journeys = session.scalars(select(OutboxMessage.journey_id).distinct()).all()
            stored = {
                (journey, r.step_id, r.variant or ""): r.figures
                for journey in journeys
                for r in counts.read(session, journey)
                if r.figures
            }
            fresh = recounts.recount(session)
    finally:
        engine.dispose()
    return total, stored == fresh


def line(label: str, result: dict[str, float]) -> str:
    answered = result["requests"] - result["errors"]
    return (
        f"{label}: {result['rps']:,.0f}/s, p50 {result['p50']:.2f} ms, p99 "
        f"{result['p99']:.2f} ms, {answered:,.0f} answered 3xx, non-3xx {result['errors']:.0f}, "
        f"server CPU {1e6 * result['cpu'] / max(result['requests'], 1):.0f} µs a request, "
        f"load average at its end {result['load']:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--database",
        help="a database holding a sent campaign already (e.g. from `mobilise demo`): no fresh"
        " one, no demo; the bench's clicks stay in it",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    with campaign(args.backend, args.database) as url, tempfile.TemporaryDirectory() as scratch:
        made = click_tokens(url)
        tokens_file = Path(scratch) / "tokens.txt"
        tokens_file.write_text("\n".join(made) + "\n")
        print(
            f"machine: {machine()}; ONE server process, wrk -t1 -c{args.connections} "
            f"-d{args.seconds}s over {len(made):,} tokens of sent thank-yous, backend "
            f"{args.backend}, load average before {os.getloadavg()[0]:.2f}"
        )
        bare = [sys.executable, "-m", "uvicorn", "bench.click_bench:bare_app", "--factory"]
        bare += ["--loop", "uvloop", "--http", "httptools", "--no-access-log"]
        bare_env = {**os.environ, TOKENS_VARIABLE: str(tokens_file)}
        with server(bare, bare_env, Path(scratch) / "bare.log") as (base, pid):
            print(
                line(
                    "bare Starlette redirect",
                    load(base, pid, tokens_file, args.seconds, args.connections),
                )
            )
        before, _ = recorded(url)
        serve = [sys.executable, "-m", "engine.cli", "run", "--workers", "1", "--no-scheduler"]
        access = Path(scratch) / "access.log"
        with server(serve, _env(url), access) as (base, pid):
            result = load(base, pid, tokens_file, args.seconds, args.connections)
        after, exact_rows = recorded(url)
        logged = access.read_text().count(LOGGED_302)
    clicks = after - before
    answered = int(result["requests"] - result["errors"])
    exact = clicks == logged and answered <= clicks <= answered + args.connections
    print(line("click redirects", result))
    print(
        f"  clicks recorded {clicks:,}, 302s logged {logged:,}, 302s wrk counted {answered:,} "
        f"({'exact' if exact else 'WRONG'}); summary rows "
        f"{'equal a recount' if exact_rows else 'DIFFER from a recount'}"
    )
    if not (exact and exact_rows):
        sys.exit("the clicks recorded do not match the answers")


if __name__ == "__main__":
    main()
