"""Whether a long-running consumer is alive and ready: the rule behind `/healthz` and
`/readyz` of the stream workers and the sink (docs/operations.md, *Health*).

Not a rule of domain.md: interfaces.md asks for `/healthz` on every process, and issue 13
for one that tells the truth. A consumer whose `/metrics` answers may still be stuck:
its event loop blocked, a batch in hand that never finishes, records waiting on the
broker that it no longer takes, or a stop that never ends. This module decides from
what the process reports about itself; the process (``onewindow.observability.health``)
stamps the times and serves the answer.

Every time is in seconds on one monotonic clock (``time.monotonic()``), passed in: no
function here reads a clock. Standard library only, like the rest of
:mod:`onewindow.domain`.

The reasons, checked in this order, the first that holds wins (all compare with
``stall``, the operator's ``ONEWINDOW_STALL_SECONDS``):

``stopping``
    asked to stop more than ``stall`` seconds ago and still running;
``loop_blocked``
    the event loop (Faust) or the poll loop (the sink) has not turned for more than
    ``stall`` seconds (the detail adds how long records have been in hand, if any);
``busy``
    the loop turns, but records are in hand (taken from the broker, not yet finished)
    and none finished for more than ``stall`` seconds: the agent is stuck;
``lag_unknown``
    once started, the consumer lag has not been measured for more than
    ``stall + 2 * lag_every`` seconds (measured every ``lag_every`` seconds): a lag
    that cannot be read is not taken for zero;
``stalled``
    the last measured lag is above zero, has been since more than ``stall`` seconds,
    and the consumer made no progress (committed offsets advanced) in that time.

An idle consumer (lag zero) is healthy however long nothing arrives, and so is one still
starting (partitions being assigned, tables being restored), as long as its loop turns.
Ready (`/readyz`) is healthy, started, lag measured at least once, and not stopping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["REASONS", "Signals", "Verdict", "liveness", "readiness"]

#: Every reason a verdict may give, in the order they are checked (``starting`` only for
#: readiness).
REASONS = ("stopping", "loop_blocked", "busy", "lag_unknown", "stalled", "starting")


@dataclass(frozen=True)
class Signals:
    """What a consumer reports about itself, seconds on one monotonic clock.

    ``started_at``: the process began; ``ready_at``: its partitions were assigned and
    its state restored (None: not yet); ``loop_at``: the loop's last turn (None: the loop
    has not begun, nothing to judge); ``busy_since``: records in hand since, reset when one
    is finished (None: nothing in hand); ``progress_at``: committed offsets last
    advanced (None: never); ``lag``: total records waiting at the last measurement and
    ``lag_at`` its time; ``lag_since``: since when the measured lag has been above zero
    (None: it was zero); ``lag_error``: why the last measurement failed, if it did;
    ``stopping_since``: asked to stop (None: not)."""

    started_at: float
    ready_at: float | None = None
    loop_at: float | None = None
    busy_since: float | None = None
    progress_at: float | None = None
    lag: int | None = None
    lag_at: float | None = None
    lag_since: float | None = None
    lag_error: str | None = None
    stopping_since: float | None = None


@dataclass(frozen=True)
class Verdict:
    """``ok``, else the ``reason`` (one of :data:`REASONS`) and a one-line ``detail``."""

    ok: bool
    reason: str | None = None
    detail: str = ""

    def body(self) -> dict[str, Any]:
        """The JSON body: ``{"status": "ok"}``, or ``{"status": "unavailable",
        "reason": ..., "detail": ...}``."""
        if self.ok:
            return {"status": "ok"}
        return {"status": "unavailable", "reason": self.reason, "detail": self.detail}


OK = Verdict(True)


def _age(now: float, since: float) -> str:
    return f"{max(0.0, now - since):.0f}s"


def liveness(s: Signals, now: float, *, stall: float, lag_every: float) -> Verdict:
    """Whether the consumer is alive at ``now`` (the reasons of the module docstring).

    ``stall`` > 0: seconds without a turn or progress that count as stuck; ``lag_every``
    >= 0: seconds between two lag measurements. Raises ``ValueError`` for a ``stall``
    that is not positive."""
    if stall <= 0:
        raise ValueError(f"stall must be positive, not {stall}")
    if s.stopping_since is not None and now - s.stopping_since > stall:
        return Verdict(False, "stopping",
                       f"asked to stop {_age(now, s.stopping_since)} ago and still running")
    if s.loop_at is not None and now - s.loop_at > stall:
        held = "" if s.busy_since is None else \
            f", records in hand for {_age(now, s.busy_since)}"
        return Verdict(False, "loop_blocked",
                       f"the loop has not turned for {_age(now, s.loop_at)}{held}")
    if s.busy_since is not None and now - s.busy_since > stall:
        return Verdict(False, "busy", f"records in hand for {_age(now, s.busy_since)} "
                                      "without one finished")
    if s.ready_at is None:
        return OK  # starting: partitions, restore; the lag is not measured yet
    measured = s.lag_at if s.lag_at is not None else s.ready_at
    if now - measured > stall + 2 * lag_every:
        why = f" (last error: {s.lag_error})" if s.lag_error else ""
        return Verdict(False, "lag_unknown",
                       f"consumer lag not measured for {_age(now, measured)}{why}")
    if s.lag and s.lag_since is not None:
        since = max(s.lag_since, s.progress_at if s.progress_at is not None else s.lag_since)
        if now - since > stall:
            return Verdict(False, "stalled",
                           f"{s.lag} records waiting and no progress for {_age(now, since)}")
    return OK


def readiness(s: Signals, now: float, *, stall: float, lag_every: float) -> Verdict:
    """Alive (:func:`liveness`), started, lag measured at least once, not stopping."""
    alive = liveness(s, now, stall=stall, lag_every=lag_every)
    if not alive.ok:
        return alive
    if s.stopping_since is not None:
        return Verdict(False, "stopping", "stopping")
    if s.ready_at is None:
        return Verdict(False, "starting", "partitions not yet assigned or state not restored")
    if s.lag_at is None:
        return Verdict(False, "starting", "consumer lag not measured yet")
    return OK
