"""The health rule of the long-running consumers (onewindow.domain.health)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onewindow.domain.health import REASONS, Signals, Verdict, liveness, readiness

STALL = 120.0
EVERY = 10.0
T0 = 1000.0  # the process started; every time below is relative to it


def ready(**changes: float | int | str | None) -> Signals:
    """A consumer started at T0, ready at T0 + 5, its loop turning, lag 0 measured."""
    base = {"started_at": T0, "ready_at": T0 + 5, "loop_at": T0 + 5, "lag": 0,
            "lag_at": T0 + 5}
    return Signals(**{**base, **changes})  # type: ignore[arg-type]


def live(s: Signals, now: float) -> Verdict:
    return liveness(s, now, stall=STALL, lag_every=EVERY)


def test_starting_is_alive_not_ready_and_judged_on_its_loop_only() -> None:
    s = Signals(started_at=T0, loop_at=T0 + 500)
    assert live(s, T0 + 501).ok  # restoring tables for minutes: no lag yet, alive
    assert readiness(s, T0 + 501, stall=STALL, lag_every=EVERY) == \
        Verdict(False, "starting", "partitions not yet assigned or state not restored")
    # a loop that has not begun (the sink waiting for its partitions) is not judged
    assert live(Signals(started_at=T0), T0 + 10_000).ok
    # a loop that turned and then stopped turning is, started or not
    blocked = live(Signals(started_at=T0, loop_at=T0 + 1), T0 + 1 + STALL + 1)
    assert (blocked.ok, blocked.reason) == (False, "loop_blocked")


def test_idle_is_not_stuck_however_long_nothing_arrives() -> None:
    now = T0 + 86_400
    s = ready(loop_at=now - 1, lag=0, lag_at=now - EVERY, progress_at=None)
    assert live(s, now).ok
    assert readiness(s, now, stall=STALL, lag_every=EVERY).ok


def test_a_blocked_loop_is_503_after_the_stall_time_not_before() -> None:
    assert live(ready(loop_at=T0 + 100, lag_at=T0 + 100), T0 + 100 + STALL).ok
    v = live(ready(loop_at=T0 + 100, lag_at=T0 + 100), T0 + 100 + STALL + 1)
    assert v == Verdict(False, "loop_blocked", "the loop has not turned for 121s")
    # records taken before the loop blocked: said too, the loop is the reason
    v = live(ready(loop_at=T0 + 100, lag_at=T0 + 100, busy_since=T0 + 90), T0 + 300)
    assert v.reason == "loop_blocked" and v.detail.endswith("records in hand for 210s")


def test_records_in_hand_that_never_finish_are_busy() -> None:
    now = T0 + 1000
    v = live(ready(loop_at=now, lag_at=now, busy_since=now - STALL - 5), now)
    assert v == Verdict(False, "busy", "records in hand for 125s without one finished")
    assert live(ready(loop_at=now, lag_at=now, busy_since=now - STALL + 5), now).ok


def test_lag_waiting_without_progress_is_stalled() -> None:
    now = T0 + 1000
    waiting = ready(loop_at=now, lag=273, lag_at=now - 2, lag_since=now - 200,
                    progress_at=now - 300)
    assert live(waiting, now) == Verdict(False, "stalled",
                                         "273 records waiting and no progress for 200s")
    # progress since: committed offsets advanced 10 s ago, the backlog is being worked off
    assert live(ready(loop_at=now, lag=273, lag_at=now - 2, lag_since=now - 200,
                      progress_at=now - 10), now).ok
    # lag that appeared a moment ago: the next batch has not had its chance yet
    assert live(ready(loop_at=now, lag=4, lag_at=now, lag_since=now - 5,
                      progress_at=now - 5000), now).ok
    # never any progress at all
    assert live(ready(loop_at=now, lag=4, lag_at=now, lag_since=now - STALL - 1),
                now).reason == "stalled"


def test_a_lag_that_cannot_be_measured_is_not_taken_for_zero() -> None:
    limit = STALL + 2 * EVERY
    now = T0 + 5000
    assert live(ready(loop_at=now, lag_at=now - limit), now).ok
    v = live(ready(loop_at=now, lag_at=now - limit - 1, lag_error="KafkaTimeoutError"), now)
    assert v == Verdict(False, "lag_unknown",
                        "consumer lag not measured for 141s (last error: KafkaTimeoutError)")
    # ready but never measured: counted from readiness
    never = Signals(started_at=T0, ready_at=T0, loop_at=T0 + limit + 1)
    assert live(never, T0 + limit + 1).reason == "lag_unknown"
    assert readiness(Signals(started_at=T0, ready_at=T0, loop_at=T0), T0 + 1, stall=STALL,
                     lag_every=EVERY) == Verdict(False, "starting",
                                                 "consumer lag not measured yet")


def test_a_stop_that_does_not_end_is_503_and_a_stopping_consumer_is_not_ready() -> None:
    now = T0 + 1000
    stopping = ready(loop_at=now, lag_at=now, stopping_since=now - 3)
    assert live(stopping, now).ok
    assert readiness(stopping, now, stall=STALL, lag_every=EVERY).reason == "stopping"
    hung = ready(loop_at=now, lag_at=now, stopping_since=now - STALL - 1)
    assert live(hung, now).reason == "stopping"


def test_bodies_and_bad_arguments() -> None:
    assert Verdict(True).body() == {"status": "ok"}
    assert Verdict(False, "busy", "x").body() == {"status": "unavailable", "reason": "busy",
                                                  "detail": "x"}
    with pytest.raises(ValueError, match="stall"):
        liveness(ready(), T0, stall=0, lag_every=EVERY)


times = st.floats(min_value=0, max_value=1e6, allow_nan=False)
maybe = st.none() | times


@given(started=times, ready_at=maybe, loop=maybe, busy=maybe, progress=maybe,
       lag=st.none() | st.integers(0, 10**9), lag_at=maybe, lag_since=maybe, stop=maybe,
       now=times, stall=st.floats(min_value=0.1, max_value=1e4))
def test_every_verdict_is_ok_or_names_a_known_reason(
        started: float, ready_at: float | None, loop: float | None, busy: float | None,
        progress: float | None, lag: int | None, lag_at: float | None,
        lag_since: float | None, stop: float | None, now: float, stall: float) -> None:
    s = Signals(started_at=started, ready_at=ready_at, loop_at=loop, busy_since=busy,
                progress_at=progress, lag=lag, lag_at=lag_at, lag_since=lag_since,
                stopping_since=stop)
    alive = liveness(s, now, stall=stall, lag_every=EVERY)
    ok = readiness(s, now, stall=stall, lag_every=EVERY)
    assert alive.ok == (alive.reason is None) and ok.ok == (ok.reason is None)
    assert {alive.reason, ok.reason} - {None} <= set(REASONS)
    assert not ok.ok or alive.ok  # ready implies alive
    # a consumer whose loop turns, holds nothing, is not stopping and has nothing waiting
    # is alive, whatever else
    if (stop is None and busy is None and lag in (0, None)
            and (loop is None or now - loop <= stall)
            and (ready_at is None or now - (lag_at if lag_at is not None else ready_at)
                 <= stall + 2 * EVERY)):
        assert alive.ok
