"""The real app served by uvicorn on 127.0.0.1 in a thread, for a real browser to talk to."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from fastapi import FastAPI


def loopback_listener() -> tuple[socket.socket, str]:
    """A socket bound to a free loopback port, and its base URL: for an app that must know
    its own address (MOBILISE_BASE_URL) before it is served."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    host, port = listener.getsockname()
    return listener, f"http://{host}:{port}"


@contextmanager
def serving(
    app: FastAPI, *, startup_timeout: float = 15.0, listener: socket.socket | None = None
) -> Iterator[str]:
    """Serve `app` on a free loopback port (or `listener`'s); yield its base URL; stop when
    the block ends."""
    if listener is None:
        listener, _ = loopback_listener()
    host, port = listener.getsockname()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    base = f"http://{host}:{port}"
    pause = threading.Event()
    try:
        for _ in range(int(startup_timeout / 0.05)):
            if server.started:
                break
            pause.wait(0.05)
        else:
            raise RuntimeError(f"the app did not start on {base} within {startup_timeout} s")
        assert httpx.get(f"{base}/healthz").status_code == 200
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()
