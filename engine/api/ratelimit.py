"""Per-client token buckets, in this process's memory, on an injected clock.

Each client may spend `per_minute` requests at once, then one every `60 / per_minute`
seconds. Nothing is shared between processes: with `mobilise run --workers N` a client
may get up to N times the limit, which is still a flood's fraction. The limit is meant to
be generous: a household, an office or a mobile operator's NAT signs from one address.
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict

from starlette.types import Scope


class TokenBuckets:
    def __init__(self, per_minute: int, *, max_clients: int = 65_536) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens a second
        self.max_clients = max_clients
        # client -> (tokens left, when counted); least recently seen first.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str, now: float) -> int:
        """0 when `client` may go on (the request is counted), else the seconds to wait.

        `now` is in seconds on any clock that only moves forward (a step back refills
        nothing). 0 requests a minute means no limit."""
        if self.capacity <= 0:
            return 0
        tokens, then = self._buckets.pop(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + max(0.0, now - then) * self.rate)
        wait = 0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = max(1, math.ceil((1 - tokens) / self.rate))
        self._buckets[client] = (tokens, now)
        if len(self._buckets) > self.max_clients:
            # The client seen longest ago starts afresh; memory stays bounded in a flood.
            self._buckets.popitem(last=False)
        return wait


def client_key(scope: Scope) -> str:
    """Who a rate limit counts: the client's address; for IPv6 its /64, since one
    subscriber is given a whole /64 to pick addresses from."""
    host = scope["client"][0] if scope.get("client") else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)
