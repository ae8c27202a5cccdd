"""Signing over HTTP: two server processes on PostgreSQL, load from wrk on loopback.

    apt-get install wrk   # Debian's package
    .venv/bin/python -m bench.signing_bench [--seconds 15] [--connections 64]

Runs twice: with group commit (the default) and with one commit per request
(MOBILISE_SIGN_BATCH_MAX=1), and prints requests/s, p50 and p99 from wrk's histogram, then
checks the petition count against the answers: every 2xx answer is counted, and the only
extra signatures are those still in flight when wrk stopped (at most one per connection).
The issue's figure is the group-commit line: >= 2,000 signatures/s with p99 < 150 ms.

`--scheduler` serves as `mobilise run` ships instead: the seed campaign synced, signers
signing its petition, and each process running the journey and dispatch passes (woken by
the signatures) with SendGrid (its stand-in, in a process of its own: production sends
through SendGrid) or, with `--transport file`, the file transport `make run` uses, so the
thank-yous leave while wrk signs.
The servers then keep running until every signer of the burst has a sent thank-you (at
most `THANKED_WITHIN_S`): the issue's figure is all of them within 60 s after the burst.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import Engine, func, select

from bench.common import SLUG, free_port, fresh_database, machine
from bench.stand_in import sendgrid_stand_in
from engine import declarations
from engine.store import journeys, petitions
from engine.store.db import make_engine, make_sessionmaker
from engine.store.models import OutboxMessage
from tests.fakes.sendgrid_server import API_KEY

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# How long the servers keep running after the burst for its thank-yous (the target is 60 s).
THANKED_WITHIN_S = 180.0


def wait_ready(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not start")


def parse_wrk(output: str) -> dict[str, float]:
    def ms(value: str, unit: str) -> float:
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    found = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}  # type: ignore[union-attr]
    for pct in ("50", "99"):
        match = re.search(rf"\s{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)", output)
        found[f"p{pct}"] = ms(match.group(1), match.group(2)) if match else float("nan")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    found["errors"] = float(non2xx.group(1)) if non2xx else 0.0
    found["requests"] = float(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    return found


def run(
    url: str,
    *,
    batch_max: int,
    seconds: int,
    connections: int,
    workers: int,
    slug: str = SLUG,
    transport: dict[str, str] | None = None,
) -> dict[str, float]:
    """wrk against `mobilise run`; with a `transport` (its environment variables), the
    scheduler runs and sends through it, and the servers run on until the burst's signers
    are thanked (`thanked_after`)."""
    port = free_port()
    env = {
        **os.environ,
        "MOBILISE_DATABASE_URL": url,
        "MOBILISE_SIGN_BATCH_MAX": str(batch_max),
        "MOBILISE_SIGN_RATE_PER_MINUTE": "0",  # wrk's every request comes from one address
    }
    if batch_max == 1:
        env["MOBILISE_SIGN_BATCH_WAIT_MS"] = "0"
    if transport is not None:
        env |= transport
    # The servers' output (an access line a request) to a file, not among the figures.
    log = tempfile.NamedTemporaryFile(prefix="signing-bench-", suffix=".log", delete=False)
    print(f"  server log: {log.name}")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            *(["--no-scheduler"] if transport is None else []),
        ],
        env=env,
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base)
        out = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{connections}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                str(HERE / "signing.lua"),
                f"{base}/api/petitions/{slug}/signatures",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 30,
        ).stdout
        ended = time.monotonic()
        load = os.getloadavg()
        cpu = [cpu_seconds(pid) for pid in worker_pids(server.pid)]
        thanks = thanked_after(url, slug, ended) if transport is not None else {}
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    loads = {f"load{i}": value for i, value in enumerate(load)}
    cpus = {f"cpu{i}": seconds for i, seconds in enumerate(cpu)}
    return parse_wrk(out) | cpus | loads | thanks


def thank_yous(engine: Engine, slug: str) -> tuple[int, int]:
    """(signers of the petition, thank-yous sent)."""
    with make_sessionmaker(engine)() as session:
        signers = petitions.read(session, slug).count
        sent = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.step_id == "thanked", OutboxMessage.status == "sent")
        )
    return signers, sent or 0


def thanked_after(url: str, slug: str, ended: float) -> dict[str, float]:
    """Polls the outbox until every signer has a sent thank-you, at most THANKED_WITHIN_S
    after the burst `ended` (monotonic); `thanked_after` is then that delay, else nan."""
    engine = make_engine(url)
    try:
        signers, at_end = thank_yous(engine, slug)
        sent = at_end
        while sent < signers and time.monotonic() - ended < THANKED_WITHIN_S:
            time.sleep(0.25)
            signers, sent = thank_yous(engine, slug)
        delay = time.monotonic() - ended if sent >= signers else float("nan")
    finally:
        engine.dispose()
    return {"thanked_at_end": at_end, "thanked": sent, "signers": signers, "thanked_after": delay}


def worker_pids(parent: int) -> list[int]:
    """The server processes (uvicorn's children, less multiprocessing's helper)."""
    children = Path(f"/proc/{parent}/task/{parent}/children")
    if not children.exists():
        return []
    pids = [int(p) for p in children.read_text().split()]
    return [p for p in pids if b"resource_tracker" not in Path(f"/proc/{p}/cmdline").read_bytes()]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def count(url: str, slug: str) -> int:
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        value = petitions.read(session, slug).count
    engine.dispose()
    return value


def seed_campaign(url: str) -> str:
    """`mobilise sync` of the shipped campaign; returns its petition's slug."""
    declared = declarations.read(ROOT)
    engine = make_engine(url)
    with make_sessionmaker(engine).begin() as session:
        now = datetime.now(UTC)
        petition = petitions.upsert(session, declared.campaigns[0].petition, now=now)
        journeys.sync_journeys(session, declared.campaigns, now)
    engine.dispose()
    return petition.slug


def thanks_line(result: dict[str, float], *, written: int, transport: str) -> str:
    signers, sent = int(result["signers"]), int(result["thanked"])
    head = f"  thank-yous: {result['thanked_at_end']:.0f} sent by the end of the burst; "
    if sent >= signers:
        tail = f"all {signers} sent {result['thanked_after']:.1f} s after it ended"
    else:
        tail = f"only {sent} of {signers} sent {THANKED_WITHIN_S:.0f} s after it ended"
    what = ".eml files" if transport == "file" else "emails taken by the SendGrid stand-in"
    return f"{head}{tail} (target: within 60 s); {written} {what}"


def burst_load(result: dict[str, float]) -> str:
    return " ".join(f"{result[key]:.2f}" for key in ("load0", "load1", "load2"))


def exact(counted: int, result: dict[str, float], connections: int) -> bool:
    answered = int(result["requests"] - result["errors"])
    return answered <= counted <= answered + connections


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backend", default="postgresql")
    parser.add_argument(
        "--scheduler", action="store_true", help="serve as `mobilise run` ships (see above)"
    )
    parser.add_argument(
        "--transport",
        choices=["sendgrid", "file"],
        default="sendgrid",
        help="with --scheduler: SendGrid (its stand-in, as production sends) or files",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    print(
        f"machine: {machine()}; {args.workers} server processes, wrk -t2 "
        f"-c{args.connections} -d{args.seconds}s, backend {args.backend}, "
        f"{'with' if args.scheduler else 'without'} the scheduler, load average before "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )
    for label, batch_max in (("group commit", 256), ("one commit per request", 1)):
        with (
            fresh_database(args.backend) as url,
            tempfile.TemporaryDirectory() as scratch,
            sendgrid_stand_in() as stand_in,
        ):
            slug = seed_campaign(url) if args.scheduler else SLUG
            transport = None
            if args.scheduler and args.transport == "file":
                transport = {"MOBILISE_TRANSPORT": "file", "MOBILISE_OUTBOX_DIR": scratch}
            elif args.scheduler:
                transport = {
                    "MOBILISE_TRANSPORT": "sendgrid",
                    "SENDGRID_API_KEY": API_KEY,
                    "MOBILISE_SENDGRID_API_HOST": stand_in.url,
                }
            result = run(
                url,
                batch_max=batch_max,
                seconds=args.seconds,
                connections=args.connections,
                workers=args.workers,
                slug=slug,
                transport=transport,
            )
            counted = count(url, slug)
            written = (
                len(list(Path(scratch).iterdir()))
                if args.transport == "file"
                else stand_in.stop()[1]
            )
        print(
            f"{label}: {result['rps']:.0f} signatures/s, p50 {result['p50']:.1f} ms, "
            f"p99 {result['p99']:.1f} ms, non-2xx {result['errors']:.0f}, "
            f"count {counted} for {result['requests']:.0f} answers "
            f"({'exact' if exact(counted, result, args.connections) else 'WRONG'}), "
            f"load average at its end {burst_load(result)}"
        )
        if args.scheduler:
            print(thanks_line(result, written=written, transport=args.transport))
        # Both processes accept on one socket: wrk's connections may not split evenly.
        split = [result[k] for k in sorted(result) if k.startswith("cpu")]
        if split and counted:
            print(
                f"  server CPU {1000 * sum(split) / counted:.2f} ms a signature, "
                f"by process {' / '.join(f'{s:.1f} s' for s in split)}"
            )
        if not exact(counted, result, args.connections):
            sys.exit("the count does not match the answers")


if __name__ == "__main__":
    main()
