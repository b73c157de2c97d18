"""Retrying with exponential backoff, and when to stop restarting a process. Pure: no
clock, no process, no I/O; standard library only.

- :class:`Backoff`: the delays between attempts to connect (the sink's and the workers'
  first metadata request, `onewindow provision`'s wait for the broker): ``first``
  seconds, doubled per failed attempt, at most ``cap``.
- :class:`RestartPolicy` and :func:`decide`: what `onewindow up` does when one of its
  processes exits (docs/operations.md, "Supervision"): restart it after a delay, give up,
  or nothing (a one-shot process that finished).

No jitter: each process retries one broker or database on its own machine, there is no
crowd of clients to spread out. The contract (interfaces.md) is silent on all of this;
the numbers are the project's choice, explained in docs/operations.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from enum import Enum

__all__ = ["Backoff", "Decision", "RestartPolicy", "RestartState", "Verdict", "decide"]


@dataclass(frozen=True)
class Backoff:
    """Delays in seconds: ``first``, then doubled (``factor``) per attempt, never more
    than ``cap``. ``delay(1)`` is the wait after the first failed attempt."""

    first: float = 1.0
    cap: float = 30.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        if not (0 < self.first <= self.cap) or self.factor < 1:
            raise ValueError(f"invalid backoff {self}: need 0 < first <= cap, factor >= 1")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1, 2, ...)."""
        if attempt < 1:
            raise ValueError(f"attempt {attempt} < 1")
        # min() before the power would overflow: the cap is reached long before that
        exponent = min(attempt - 1, 64)
        return min(self.cap, self.first * self.factor ** exponent)

    def delays(self) -> Iterator[float]:
        """``delay(1)``, ``delay(2)``, ... without end."""
        attempt = 0
        while True:
            attempt += 1
            yield self.delay(attempt)


class Verdict(Enum):
    """What to do about a process that exited."""

    RESTART = "restart"  #: start it again after `Decision.delay` seconds
    GIVE_UP = "give up"  #: it keeps failing right after its start: stop the stack
    DONE = "done"        #: a one-shot process finished cleanly: leave it be


@dataclass(frozen=True)
class RestartState:
    """What the policy remembers of one process between its exits.

    ``failures``: exits since it last ran stably (the backoff exponent);
    ``fast_failures``: exits in a row, each within ``fast_exit`` seconds of its start."""

    failures: int = 0
    fast_failures: int = 0


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    #: seconds to wait before the restart (0 unless RESTART)
    delay: float
    #: the state to remember for the process's next exit
    state: RestartState
    #: this exit came within `fast_exit` seconds of the start
    fast: bool


@dataclass(frozen=True)
class RestartPolicy:
    """How a supervisor restarts a process that exits (seconds throughout).

    - the delay before a restart follows ``backoff`` (1 s, doubled per exit, at most
      30 s), counted from the last stable run: a run of at least ``stable_after`` seconds
      resets it, so a process that dies once a day is back after 1 s each time;
    - an exit within ``fast_exit`` seconds of the start is a fast failure; after
      ``give_up_after`` fast failures in a row the supervisor gives up (a process that
      cannot start: bad configuration, a port in use, a record it crashes on at once);
      an exit after a longer run breaks the row;
    - a one-shot process (``onewindow simulate``) that exits with status 0 is done."""

    backoff: Backoff = Backoff(first=1.0, cap=30.0)
    stable_after: float = 120.0
    fast_exit: float = 30.0
    give_up_after: int = 5

    def __post_init__(self) -> None:
        if self.give_up_after < 1 or self.fast_exit < 0 or self.stable_after < self.fast_exit:
            raise ValueError(f"invalid restart policy {self}")


def decide(policy: RestartPolicy, state: RestartState, *, ran_for: float, status: int,
           one_shot: bool = False) -> Decision:
    """What to do about a process that exited with ``status`` (negative: killed by that
    signal) after running ``ran_for`` seconds, given its ``state`` from earlier exits."""
    if one_shot and status == 0:
        return Decision(Verdict.DONE, 0.0, RestartState(), fast=False)
    fast = ran_for < policy.fast_exit
    failures = 1 if ran_for >= policy.stable_after else state.failures + 1
    fast_failures = state.fast_failures + 1 if fast else 0
    new = replace(state, failures=failures, fast_failures=fast_failures)
    if fast_failures >= policy.give_up_after:
        return Decision(Verdict.GIVE_UP, 0.0, new, fast=True)
    return Decision(Verdict.RESTART, policy.backoff.delay(failures), new, fast=fast)
