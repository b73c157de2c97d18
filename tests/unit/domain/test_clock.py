"""Epoch milliseconds <-> aware UTC datetimes (onewindow.domain.clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onewindow.domain.clock import EPOCH, from_ms, to_ms

CST = timezone(timedelta(hours=8))


def test_known_values():
    assert to_ms(EPOCH) == 0
    assert from_ms(1_700_000_000_000) == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert from_ms(1_700_000_000_123).microsecond == 123_000
    assert to_ms(datetime(2025, 9, 30, 10, 0, tzinfo=CST)) == to_ms(
        datetime(2025, 9, 30, 2, 0, tzinfo=UTC))


def test_sub_milliseconds_are_floored_also_before_1970():
    assert to_ms(datetime(2025, 1, 1, 0, 0, 0, 999, tzinfo=UTC)) == to_ms(
        datetime(2025, 1, 1, tzinfo=UTC))
    assert to_ms(EPOCH - timedelta(microseconds=1)) == -1


def test_none_passes_through():
    assert to_ms(None) is None
    assert from_ms(None) is None


def test_naive_datetimes_are_refused():
    with pytest.raises(TypeError):
        to_ms(datetime(2025, 1, 1))


def test_from_ms_is_utc():
    assert from_ms(0).tzinfo is UTC


@given(st.integers(min_value=-10**13, max_value=10**14))
def test_round_trip(ms):
    assert to_ms(from_ms(ms)) == ms
