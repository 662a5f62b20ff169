"""Rate limits of feasibility queries: a token bucket per user and one per client address.

A bucket holds up to `burst` tokens and refills at `per_minute` tokens a minute; a query takes
one token from its user's bucket and one from its address's. A bucket that would be full again
is forgotten (it is the same as a new one), so memory follows the callers active in the last
few minutes, and at most `max_keys` buckets are kept.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from catalogue.api.state import request_value
from catalogue.config import LimitSettings
from catalogue.exceptions import RateLimitedError

MAX_KEYS = 100_000


class TokenBuckets:
    """Token buckets by key (not locked: FeasibilityRateLimits holds the lock)."""

    def __init__(self, per_minute: float, burst: int, max_keys: int = MAX_KEYS) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at
        self._next_sweep = float("-inf")

    def tokens(self, key: str, now: float) -> float:
        """Tokens the key has now."""
        tokens, at = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - at) * self.rate)

    def wait(self, key: str, now: float) -> float:
        """Seconds until the key has a token (0: it has one now)."""
        missing = 1.0 - self.tokens(key, now)
        return 0.0 if missing <= 0 else missing / self.rate

    def take(self, key: str, now: float) -> None:
        """Take one token (the caller checked `wait`)."""
        self._buckets[key] = (self.tokens(key, now) - 1.0, now)
        self._buckets.move_to_end(key)
        if now >= self._next_sweep or len(self._buckets) > self.max_keys:
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        """Forget the buckets full again; then the least recently used beyond `max_keys`."""
        refill = self.burst / self.rate
        for key in [k for k, (tokens, at) in self._buckets.items() if at + refill <= now]:
            del self._buckets[key]
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        self._next_sweep = now + min(refill, 60.0)

    def __len__(self) -> int:
        return len(self._buckets)


class FeasibilityRateLimits:
    """The per-user and per-address limits of feasibility queries; thread-safe."""

    def __init__(
        self,
        settings: LimitSettings,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.clock = clock
        self.users = _buckets(
            settings.feasibility_per_user, settings.feasibility_user_burst, max_keys
        )
        self.addresses = _buckets(
            settings.feasibility_per_ip, settings.feasibility_ip_burst, max_keys
        )
        self._lock = threading.Lock()

    def check(self, user: str, address: str) -> None:
        """Take a token for the user and for the address, or raise RateLimitedError (and take
        none) when either has none left."""
        pairs = ((self.users, user, "user"), (self.addresses, address, "address"))
        limits = [(b, k, who) for b, k, who in pairs if b is not None]
        if not limits:
            return
        with self._lock:
            now = self.clock()
            waits = [(buckets.wait(key, now), who) for buckets, key, who in limits]
            wait, who = max(waits)
            if wait > 0:
                raise RateLimitedError(
                    f"too many feasibility queries for this {who}: retry in {math.ceil(wait)} s",
                    retry_after=wait,
                )
            for buckets, key, _ in limits:
                buckets.take(key, now)


def _buckets(per_minute: float | None, burst: int, max_keys: int) -> TokenBuckets | None:
    return TokenBuckets(per_minute, burst, max_keys) if per_minute else None


def check_feasibility(context: Any) -> None:
    """Apply the app's feasibility rate limits (app.state.feasibility_limits) to the request
    of a GraphQL context; nothing when the app has none."""
    request = getattr(context, "request", None)
    limits = request_value(request, "feasibility_limits", FeasibilityRateLimits)
    if limits is None or request is None:
        return
    address = request.client.host if request.client else "unknown"
    principal = getattr(context, "principal", None)
    user = str(getattr(principal, "user", None) or f"anonymous@{address}")
    limits.check(user, address)
