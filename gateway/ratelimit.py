"""The per-department rate of the gateway: a token bucket of events (pure; the clock is
passed in).

Each department has a bucket of ``burst`` events, refilled at ``rate`` events per second.
A request costs one token per event it carries (at least one, so empty requests are
counted too); a request whose cost the bucket cannot cover is refused whole (429, with
``Retry-After`` the seconds until it could be) and takes nothing, so a department over its
rate sends nothing until it slows down, and a department under it is never held up.
``burst`` is at least one full batch (500 events), so every request can pass eventually.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

__all__ = ["TokenBuckets"]


class TokenBuckets:
    """Token buckets by key (a department code). Not thread-safe: the gateway calls it
    from its event loop only."""

    def __init__(self, rate: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate must be > 0 and burst >= 1, got {rate}, {burst}")
        self.rate, self.burst, self._clock = rate, burst, clock
        #: key -> (tokens, when they were counted)
        self._buckets: dict[str, tuple[float, float]] = {}

    def _level(self, key: str) -> tuple[float, float]:
        now = self._clock()
        tokens, then = self._buckets.get(key, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - then) * self.rate), now

    def wait_for(self, key: str, cost: int) -> float:
        """The seconds until ``key``'s bucket holds ``cost`` tokens (``0.0``: it does now);
        takes nothing."""
        tokens, _now = self._level(key)
        return 0.0 if tokens >= cost else (cost - tokens) / self.rate

    def take(self, key: str, cost: int) -> float:
        """Take ``cost`` tokens (``1 <= cost <= burst``) from ``key``'s bucket: ``0.0`` when
        taken, else the seconds until the bucket holds ``cost`` (nothing is taken)."""
        if not 1 <= cost <= self.burst:
            raise ValueError(f"cost must be within 1..{self.burst}, got {cost}")
        tokens, now = self._level(key)
        if tokens >= cost:
            self._buckets[key] = (tokens - cost, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (cost - tokens) / self.rate

    @staticmethod
    def retry_after(wait: float) -> int:
        """``Retry-After`` in whole seconds for a ``wait`` from :meth:`take` (at least 1)."""
        return max(1, math.ceil(wait))
