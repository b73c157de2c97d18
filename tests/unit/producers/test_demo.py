"""The demo that moves (issue 16, point 5): the first two minutes of `make run`'s simulator,
driven with a fake clock (no sleeps), hold acceptance, review, 补正 asked and answered,
approvals, a refusal, avoidable submissions and a conflict, every event valid when it is
sent (never from the future: the processing clock is the wall clock at the send) and sent
in event-time order; the scripted opening's cases end as the domain's fold says they must.

Runs at the pace `onewindow up --simulate` has by default (its `--rate`, the settings'
compression, service hours on the real working-day calendar), started at moments a
newcomer might pick: a working morning, before the centre opens on a Monday, at lunch, on
a Saturday night, on the evening of a national holiday.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from onewindow.calendar_source import load_calendar
from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.domain.case import fold, project
from onewindow.domain.materials import (
    MATERIAL_EVENTS,
    all_links,
    avoidable_set,
    material_from_event,
)
from onewindow.domain.validation import validate
from onewindow_cli.cli import build_parser
from producers.publisher import DeliveryReport
from producers.scenarios import OPENING_SPAN, ScenarioConfig, ScenarioGenerator
from producers.service_hours import ServiceHours
from producers.simulator import SimulationConfig, load_cursor, simulate

CODEC = get_codec()
REGISTRY = load_registry()
CALENDAR = load_calendar()
HOURS = ServiceHours(CALENDAR)
CST = timedelta(hours=8)

#: when `make run` starts (Asia/Shanghai wall times, as UTC instants)
STARTS = {
    "a Thursday morning": datetime(2026, 5, 21, 10, 0, tzinfo=UTC) - CST,
    "a Monday before opening": datetime(2026, 5, 18, 7, 45, tzinfo=UTC) - CST,
    "a Wednesday at lunch": datetime(2025, 11, 12, 12, 40, tzinfo=UTC) - CST,
    "a Saturday night": datetime(2025, 11, 15, 23, 30, tzinfo=UTC) - CST,
    "a national holiday's evening": datetime(2025, 10, 3, 20, 0, tzinfo=UTC) - CST,
}


class FakeClock:
    """The wall clock and the monotonic clock of a run; `sleep` moves both."""

    def __init__(self, wall: datetime) -> None:
        self.wall, self.t = wall, 0.0

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds

    def now(self) -> datetime:
        return self.wall + timedelta(seconds=self.t)


class RecordingPublisher:
    """Each event sent, with the fake time of its send."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sent: list[tuple[float, dict[str, Any]]] = []
        self.report = DeliveryReport()

    def send(self, event: dict[str, Any], *, validate_first: bool = True,
             topic: str | None = None) -> str:
        self.sent.append((self.clock.t, event))
        self.report.delivered["t"] += 1
        return topic or "t"

    def __enter__(self) -> RecordingPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _first_two_minutes(tmp_path: Path, start: datetime, seconds: float = 120
                       ) -> list[tuple[float, dict[str, Any]]]:
    """What `up --simulate`'s simulator sends in its first ``seconds`` from ``start``
    (its cursor in ``tmp_path``): ``(seconds since its start, event)``."""
    args = build_parser().parse_args(["up", "--simulate"])
    settings = Settings(data_dir=tmp_path, kafka_security_protocol="PLAINTEXT")
    config = SimulationConfig(rate=args.rate,
                              compression=Settings.model_fields["simulate_compression"].default,
                              max_seconds=seconds)
    clock = FakeClock(start)
    pub = RecordingPublisher(clock)
    simulate(settings, config, publisher=pub, now=clock.now, monotonic=clock.monotonic,
             sleep=clock.sleep, hours=HOURS)
    assert pub.sent and clock.t >= seconds
    return pub.sent


@pytest.mark.parametrize("when", list(STARTS))
def test_the_first_two_minutes_show_every_kind_of_event_in_a_valid_order(
        tmp_path: Path, when: str) -> None:
    start = STARTS[when]
    sent = _first_two_minutes(tmp_path, start)
    # the deliberately spoiled copies (event id + "-X") go to the dead letters; the rest
    # must be valid at the moment they are sent
    good = [(t, CODEC.decode(CODEC.encode(e))) for t, e in sent
            if not str(e["event_id"]).endswith("-X")]
    for t, e in good:
        now = start + timedelta(seconds=t)
        assert e["occurred_at"] <= now, (when, e["event_id"])
        assert validate(e, topic_department=e["department"], departments=REGISTRY.codes,
                        now=now, counters=REGISTRY.counter_codes) is None, e["event_id"]
    times = [e["occurred_at"] for _, e in good]
    assert times == sorted(times)  # sent in event-time order
    first: dict[str, tuple[float, dict[str, Any]]] = {}
    for t, e in good:  # a resent event (1 %) is a duplicate the workers ignore
        first.setdefault(e["event_id"], (t, e))
    good = list(first.values())

    kinds = Counter((e["type"], e.get("status")) for _, e in good)
    for kind in [("CaseAccepted", None), ("MaterialSubmitted", None),
                 ("CertificateIssued", None), ("TaskUpdated", "RECEIVED"),
                 ("TaskUpdated", "IN_REVIEW"), ("TaskUpdated", "SUPPLEMENT_REQUESTED"),
                 ("TaskUpdated", "SUPPLEMENT_RECEIVED"), ("TaskUpdated", "APPROVED"),
                 ("TaskUpdated", "REJECTED")]:
        assert kinds[kind], (when, kind, kinds)

    by_case: dict[str, list[dict[str, Any]]] = {}
    for _, e in good:
        by_case.setdefault(e["case_id"], []).append(e)
    views = {c: project(fold(by_case[c]), CALENDAR) for c in by_case}
    # the opening's four cases: the run's first four numbers
    startup, refusal, restaurant, conflict = sorted(
        c for c in by_case if c.endswith(("000001", "000002", "000003", "000004")))
    assert [views[c]["status"] for c in (startup, refusal, restaurant, conflict)] == \
        ["APPROVED", "REJECTED", "APPROVED", "APPROVED"], when
    supplement = [e["status"] for e in by_case[restaurant] if e["type"] == "TaskUpdated"
                  and e["task_id"].endswith("-SCJG")]
    assert supplement == ["RECEIVED", "IN_REVIEW", "SUPPLEMENT_REQUESTED",
                          "SUPPLEMENT_RECEIVED", "IN_REVIEW", "APPROVED"]

    materials = [material_from_event(e) for _, e in good if e["type"] in MATERIAL_EVENTS]
    avoidable = avoidable_set(materials)
    # the ID card handed to a second department, the 营业执照 copy of a licence issued an
    # hour before: both already on file
    assert f"{startup}-M02" in avoidable
    assert f"{restaurant}-M03" in avoidable
    conflicts = {(lk.material_a, lk.material_b) for lk in all_links(materials)
                 if lk.verdict == "CONFLICT"}
    assert (f"{refusal}-M01", f"{conflict}-M01") in conflicts

    # the opening is all out within the first minute, so it is on the counter within two
    opening_sent = [t for t, e in good
                    if e["case_id"] in (startup, refusal, restaurant, conflict)]
    assert max(opening_sent) < 60, (when, max(opening_sent))
    # and the compressed clock never got ahead of the wall clock
    assert max(e["occurred_at"] for _, e in good) <= start + timedelta(seconds=120)


def test_the_opening_fits_its_span_in_open_time_and_follows_the_hours() -> None:
    start = datetime(2025, 11, 12, 3, 0, tzinfo=UTC)  # 11:00 in Guangzhou: lunch comes
    cases = ScenarioGenerator(ScenarioConfig(seed=3, start=start, hours=HOURS,
                                             run="T")).opening()
    events = [e for c in cases for e in c]
    assert len(cases) == 4 and len({e["event_id"] for e in events}) == len(events)
    assert all(start < e["occurred_at"] <= HOURS.add(start, OPENING_SPAN.total_seconds())
               for e in events)
    # nothing at lunch: each at an open instant, or at the closing one
    assert all(HOURS.is_open(e["occurred_at"])
               or HOURS.is_open(e["occurred_at"] - timedelta(milliseconds=1)) for e in events)
    for case in cases:
        assert case[0]["type"] == "CaseAccepted"
        assert [e["occurred_at"] for e in case] == sorted(e["occurred_at"] for e in case)


@pytest.mark.parametrize("when", ["a Saturday night", "a Monday before opening"])
def test_a_restart_right_after_a_run_still_plays_the_opening_before_now(
        tmp_path: Path, when: str) -> None:
    """The cursor says the last run reached now; the opening still needs its 200 open
    minutes before now, so the run starts that far back (under new ids)."""
    start = STARTS[when]
    first = _first_two_minutes(tmp_path, start, seconds=600)  # caught up with now
    reached = load_cursor(Settings(data_dir=tmp_path, kafka_security_protocol="PLAINTEXT"))
    assert reached is not None and reached >= start
    again = start + timedelta(minutes=5)
    second = _first_two_minutes(tmp_path, again)
    assert not {e["event_id"] for _, e in first} & {e["event_id"] for _, e in second}
    accepted = [e for _, e in second if e["type"] == "CaseAccepted"]
    assert len(accepted) >= 4
    assert min(e["occurred_at"] for e in accepted) >= HOURS.back(
        again, OPENING_SPAN.total_seconds())
    statuses = Counter(e.get("status") for _, e in second)
    assert statuses["REJECTED"] and statuses["SUPPLEMENT_RECEIVED"]
