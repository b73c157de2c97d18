"""A decided task's receipt, pauses and hours (onewindow.domain.decision_time), worked by
hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from onewindow.domain.decision_time import task_time, tenths_of_hours

T0 = datetime(2025, 3, 3, 1, 0, tzinfo=UTC)


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def test_receipt_pauses_and_the_department_s_own_time() -> None:
    # received at 0, 补正 asked at 2 and answered at 8, 特别程序 from 10 straight after a
    # second request at 9 (one pause of 9-12), decided at 20; given in any order
    events = [(h(12), "RESUMED", "e6"), (h(0), "RECEIVED", "e1"), (h(2), "SUPPLEMENT_REQUESTED", "e2"),
              (h(8), "SUPPLEMENT_RECEIVED", "e3"), (h(9), "SUPPLEMENT_REQUESTED", "e4"),
              (h(10), "SUSPENDED", "e5"), (h(20), "APPROVED", "e7")]
    t = task_time(events, h(20))
    assert t is not None
    assert t.received_at == h(0)
    assert (t.elapsed, t.paused, t.active) == (timedelta(hours=20), timedelta(hours=9),
                                               timedelta(hours=11))


def test_order_at_one_instant_is_the_status_rank() -> None:
    """A request and its answer at the same instant: the request first (rank 3 before
    4), so the pause lasts nothing; the event ids do not decide it."""
    same = [(h(1), "SUPPLEMENT_RECEIVED", "a"), (h(1), "SUPPLEMENT_REQUESTED", "b"),
            (h(0), "RECEIVED", "c"), (h(5), "APPROVED", "d")]
    t = task_time(same, h(5))
    assert t is not None and t.paused == timedelta(0)
    # a pause still open at the decision's event counts until that event only
    t = task_time([(h(0), "RECEIVED", "a"), (h(3), "SUSPENDED", "b")], h(7))
    assert t is not None and (t.paused, t.elapsed) == (timedelta(0), timedelta(hours=7))


def test_no_event_no_receipt() -> None:
    assert task_time([], h(1)) is None


def test_hours_to_a_tenth_as_shown() -> None:
    assert tenths_of_hours(timedelta(hours=5, minutes=57)) == 60
    assert tenths_of_hours(timedelta(minutes=2)) == 0
    assert tenths_of_hours(timedelta(minutes=-9)) == -1  # bad times: negative, kept
    # a tie: 63 minutes is 1.05 h, the float just above it: up, as round() does
    assert tenths_of_hours(timedelta(minutes=63)) == round(round(3780 / 3600, 1) * 10) == 11
