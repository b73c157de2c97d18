"""The restart policy of `onewindow up` and the connection backoff (onewindow/backoff.py):
pure decisions, no process, no clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onewindow.backoff import Backoff, RestartPolicy, RestartState, Verdict, decide

POLICY = RestartPolicy()  # 1 s doubling to 30 s, stable after 120 s, 5 fast exits in 30 s


def test_backoff_doubles_from_one_second_up_to_thirty() -> None:
    b = Backoff(first=1.0, cap=30.0)
    assert [b.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert b.delay(10_000) == 30  # no overflow, however long it has been failing
    gen = b.delays()
    assert [next(gen) for _ in range(3)] == [1, 2, 4]


@pytest.mark.parametrize("bad", [dict(first=0), dict(first=5, cap=1), dict(factor=0.5)])
def test_backoff_refuses_nonsense(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**bad)
    with pytest.raises(ValueError):
        Backoff().delay(0)


def test_a_process_failing_at_start_is_restarted_with_growing_delays_then_given_up() -> None:
    state = RestartState()
    delays = []
    for _ in range(4):
        d = decide(POLICY, state, ran_for=2.0, status=1)
        assert d.verdict is Verdict.RESTART and d.fast
        delays.append(d.delay)
        state = d.state
    assert delays == [1, 2, 4, 8]
    d = decide(POLICY, state, ran_for=2.0, status=1)
    assert d.verdict is Verdict.GIVE_UP
    assert d.state.fast_failures == 5


def test_a_longer_run_breaks_the_row_of_fast_exits_but_not_the_backoff() -> None:
    state = RestartState()
    for _ in range(4):
        state = decide(POLICY, state, ran_for=1.0, status=1).state
    d = decide(POLICY, state, ran_for=45.0, status=1)  # not fast, not yet stable
    assert d.verdict is Verdict.RESTART and not d.fast
    assert d.state.fast_failures == 0
    assert d.delay == 16  # the fifth exit since the last stable run
    d = decide(POLICY, d.state, ran_for=1.0, status=1)
    assert d.verdict is Verdict.RESTART and d.delay == 30 and d.state.fast_failures == 1


def test_a_stable_run_resets_the_delay() -> None:
    state = RestartState()
    for _ in range(4):
        state = decide(POLICY, state, ran_for=50.0, status=-9).state
    assert POLICY.backoff.delay(state.failures) == 8
    d = decide(POLICY, state, ran_for=POLICY.stable_after, status=-9)
    assert d.verdict is Verdict.RESTART and d.delay == 1
    assert d.state == RestartState(failures=1, fast_failures=0)


def test_any_exit_of_a_long_running_process_is_restarted_even_status_0() -> None:
    for status in (0, 1, 2, -9, -15):
        d = decide(POLICY, RestartState(), ran_for=600.0, status=status)
        assert d.verdict is Verdict.RESTART and d.delay == 1


def test_a_one_shot_process_is_done_when_it_exits_0_and_restarted_otherwise() -> None:
    d = decide(POLICY, RestartState(failures=3, fast_failures=2), ran_for=1.0, status=0,
               one_shot=True)
    assert d.verdict is Verdict.DONE and d.delay == 0
    d = decide(POLICY, RestartState(), ran_for=1.0, status=1, one_shot=True)
    assert d.verdict is Verdict.RESTART and d.delay == 1


def test_the_policy_refuses_inconsistent_numbers() -> None:
    with pytest.raises(ValueError):
        RestartPolicy(give_up_after=0)
    with pytest.raises(ValueError):
        RestartPolicy(fast_exit=60, stable_after=30)


@given(runs=st.lists(st.tuples(st.floats(0, 1000), st.integers(-15, 3)), max_size=40))
def test_delays_stay_within_bounds_and_only_a_row_of_fast_exits_gives_up(
        runs: list[tuple[float, int]]) -> None:
    state = RestartState()
    row = 0
    for ran_for, status in runs:
        d = decide(POLICY, state, ran_for=ran_for, status=status)
        row = row + 1 if ran_for < POLICY.fast_exit else 0
        assert d.state.fast_failures == row
        if d.verdict is Verdict.GIVE_UP:
            assert row == POLICY.give_up_after
            return
        assert d.verdict is Verdict.RESTART
        assert POLICY.backoff.first <= d.delay <= POLICY.backoff.cap
        state = d.state
