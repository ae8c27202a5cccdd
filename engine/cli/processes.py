"""`mobilise run --workers N`: N server processes, each listening on a socket of its own.

Uvicorn's own workers share one listening socket, and whichever process wakes first takes
the connections that are waiting: a process busy for a moment (its periodic passes
starting) was left with a fifth of wrk's 64 connections, and the other one, with the rest,
saturated its core (1,700 signatures a second against 2,600 when they were shared out:
bench/README.md). Here each process binds its own socket with `SO_REUSEPORT`, and the
kernel shares the connections out among them by address and port. The sockets are made and
listening before any process starts, so that the connections made while the processes
start (or while one is started again) wait in their own socket's queue rather than all
going to the first process up.

A process that dies is started again; SIGINT or SIGTERM stops them all (each finishes its
requests in hand, as uvicorn does on its own).
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn

log = logging.getLogger("mobilise.server")


def listening(host: str, port: int) -> socket.socket:
    """A socket listening on (host, port) that other sockets may listen on too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    return sock


BACKLOG = 2048  # uvicorn's default


def _serve_one(app: str, sock: socket.socket, options: dict[str, Any]) -> None:
    uvicorn.Server(uvicorn.Config(app, backlog=BACKLOG, **options)).run(sockets=[sock])


def serve(app: str, *, host: str, port: int, workers: int, **options: Any) -> None:
    """Run `workers` processes serving `app` (uvicorn options) until SIGINT or SIGTERM."""
    sockets = [listening(host, port) for _ in range(workers)]
    context = multiprocessing.get_context("spawn")
    stopping = threading.Event()

    def start(number: int) -> BaseProcess:
        process = context.Process(
            target=_serve_one, args=(app, sockets[number], options), name=f"mobilise-api-{number}"
        )
        process.start()
        return process

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    running = [start(n) for n in range(workers)]
    while not stopping.wait(0.5):
        for n, process in enumerate(running):
            if not process.is_alive():
                log.warning("server process %s exited (%s); starting it again", n, process.exitcode)
                running[n] = start(n)
    for process in running:
        process.terminate()  # SIGTERM: uvicorn finishes the requests in hand
    for process in running:
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
    for sock in sockets:
        sock.close()
