"""gateway.ratelimit: a token bucket of events per department."""

from __future__ import annotations

import pytest

from gateway.ratelimit import TokenBuckets


def test_a_bucket_refills_at_its_rate_and_refuses_without_taking() -> None:
    t = [0.0]
    b = TokenBuckets(rate=100.0, burst=500, clock=lambda: t[0])
    assert b.take("scjgj", 500) == 0.0          # a full batch from a full bucket
    assert b.take("scjgj", 1) == pytest.approx(0.01)
    assert b.take("gaj", 500) == 0.0            # each department its own bucket
    t[0] = 2.0                                  # 200 tokens back
    assert b.wait_for("scjgj", 300) == pytest.approx(1.0)
    assert b.take("scjgj", 300) == pytest.approx(1.0)  # refused: nothing taken
    assert b.take("scjgj", 200) == 0.0
    t[0] = 100.0
    assert b.wait_for("scjgj", 500) == 0.0      # never more than the burst
    assert b.take("scjgj", 500) == 0.0 and b.take("scjgj", 1) > 0


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert TokenBuckets.retry_after(0.01) == 1
    assert TokenBuckets.retry_after(1.2) == 2


def test_a_cost_beyond_the_burst_is_a_programming_error() -> None:
    b = TokenBuckets(rate=1.0, burst=500)
    with pytest.raises(ValueError, match="1..500"):
        b.take("x", 501)
