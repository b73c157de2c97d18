"""The counter app's limits: request bodies, request rates, Server-Sent Events streams.

* :class:`BodyLimit`: an ASGI middleware answering 413 ``{"error": "too_large"}`` to a
  request whose body is over the limit, by its ``Content-Length`` before the app runs,
  or, when chunked, as it arrives (the app is told the client went away and its own
  answer is dropped); the app never buffers more than the limit. (FastAPI's
  own ``max_body_size`` answers ``text/plain``; every error of this API is JSON.)
* :class:`RateLimiter`: at most ``limit`` events per ``window`` seconds per key (a client
  address, a user, a case), in memory, with bounded memory.
* :class:`StreamSlots`: how many change feeds may be open per user and in total.

In memory, per process: one counter process serves a service centre; behind several
replicas each enforces its own share (docs/access-control.md).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException

from onewindow.domain.access import Principal

if TYPE_CHECKING:
    from counter.auth import AuditTrail

__all__ = ["BodyLimit", "Limits", "RateLimiter", "StreamSlots", "spend_search"]

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with a JSON 413."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive,
                       send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                declared = int(value) if value.isdigit() else -1
                if declared < 0 or declared > self.max_bytes:
                    await self._refuse(send)
                    return
        seen, too_large = 0, False

        async def limited_receive() -> Message:
            # past the limit the app is told the client went away: it stops reading
            # (whatever it answers then is dropped) and the 413 below goes out instead
            nonlocal seen, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not too_large:
                await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not too_large:
                raise
        if too_large:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"error": "too_large",
                           "detail": f"request body over {self.max_bytes} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class RateLimiter:
    """At most ``limit`` hits per ``window`` seconds per key (sliding window)."""

    def __init__(self, limit: int, window: float, *, max_keys: int = 10_000) -> None:
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _queue(self, key: str, t: float) -> deque[float]:
        if len(self._hits) > self.max_keys:  # bounded memory: forget stale keys
            self._hits = {k: v for k, v in self._hits.items() if v and v[-1] > t - self.window}
        q = self._hits.setdefault(key, deque())
        while q and q[0] <= t - self.window:
            q.popleft()
        return q

    def allow(self, key: str) -> bool:
        """Count a hit for ``key``; False (not counted) when the limit is reached."""
        t = time.monotonic()
        with self._lock:
            q = self._queue(key, t)
            if len(q) >= self.limit:
                return False
            q.append(t)
            return True

    def exhausted(self, key: str) -> bool:
        """Whether ``key`` is at its limit, without counting a hit."""
        t = time.monotonic()
        with self._lock:
            return len(self._queue(key, t)) >= self.limit

    def hit(self, key: str) -> None:
        """Count a hit even past the limit (failures that must be remembered)."""
        t = time.monotonic()
        with self._lock:
            self._queue(key, t).append(t)

    def retry_after(self, key: str) -> int:
        """Whole seconds until ``key`` gets a hit back."""
        t = time.monotonic()
        with self._lock:
            q = self._queue(key, t)
            return max(1, int(q[0] + self.window - t) + 1) if q else 1


class StreamSlots:
    """Open change feeds: at most ``per_user`` for one user, ``total`` in all."""

    def __init__(self, per_user: int, total: int) -> None:
        self.per_user, self.total = per_user, total
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, user: str) -> bool:
        with self._lock:
            if sum(self._open.values()) >= self.total or \
                    self._open.get(user, 0) >= self.per_user:
                return False
            self._open[user] = self._open.get(user, 0) + 1
            return True

    def release(self, user: str) -> None:
        with self._lock:
            n = self._open.get(user, 0) - 1
            if n > 0:
                self._open[user] = n
            else:
                self._open.pop(user, None)

    def in_use(self) -> int:
        with self._lock:
            return sum(self._open.values())


class Limits:
    """The request limits of the screen API (one per app, ``app.state.limits``)."""

    def __init__(self, *, lookup_per_client_per_minute: int,
                 lookup_failures_per_case_per_hour: int, search_per_user_per_minute: int
                 ) -> None:
        self.lookup_client = RateLimiter(lookup_per_client_per_minute, 60.0)
        self.lookup_case = RateLimiter(lookup_failures_per_case_per_hour, 3600.0)
        self.search = RateLimiter(search_per_user_per_minute, 60.0)


def spend_search(limits: Limits, who: Principal, audit: AuditTrail) -> None:
    """Count a search by ID number against the user's quota; 429 beyond it."""
    if not limits.search.allow(who.subject):
        audit("search", None, "limited")
        raise HTTPException(429, "too many searches by ID number; wait a minute",
                            headers={"Retry-After": str(limits.search.retry_after(who.subject))})
