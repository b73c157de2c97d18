"""The simulator across restarts (issue 13): a second run reuses none of the first run's
ids and continues from the simulated time the first reached, instead of replaying the
backlog with the same ids and new timestamps (EVENT_ID_CONFLICT)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from onewindow.config import Settings
from producers.publisher import DeliveryReport
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from producers.simulator import (
    SimulationConfig,
    cursor_path,
    load_cursor,
    run_id,
    simulate,
    start_time,
)

NOW = datetime(2026, 5, 21, 2, 0, tzinfo=UTC)


class FakePublisher:
    """Records what the simulator sends (the port `DepartmentPublishers` fills)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.report = DeliveryReport()

    def send(self, event: dict[str, Any], *, validate_first: bool = True,
             topic: str | None = None) -> str:
        self.sent.append(event)
        self.report.delivered["t"] += 1
        return topic or "t"

    def __enter__(self) -> FakePublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _ids(cases: list[list[dict[str, Any]]], key: str) -> set[str]:
    return {str(e[key]) for case in cases for e in case if key in e}


def test_default_generator_is_unchanged() -> None:
    """Without a run namespace the generator gives the ids it always gave (fixtures,
    benchmarks and tests rely on them)."""
    case = ScenarioGenerator(ScenarioConfig(seed=7)).case()
    assert re.fullmatch(r"GZ\d{8}000001", case[0]["case_id"])
    assert case[0]["event_id"] == f"{case[0]['case_id']}-E001"


def test_two_runs_with_the_same_seed_share_no_id() -> None:
    one = list(ScenarioGenerator(ScenarioConfig(seed=2026, run=run_id(NOW))).cases(30))
    two = list(ScenarioGenerator(ScenarioConfig(
        seed=2026, run=run_id(NOW + timedelta(milliseconds=1)))).cases(30))
    for key in ("event_id", "case_id", "material_id", "certificate_id"):
        assert _ids(one, key), key
        assert not _ids(one, key) & _ids(two, key), key
    assert all(re.fullmatch(r"[0-9A-Za-z_-]{1,64}", e["event_id"]) for c in one for e in c)


def test_run_ids_differ_by_the_millisecond() -> None:
    ids = {run_id(NOW + timedelta(milliseconds=i)) for i in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"[0-9A-Z]{8}", i) for i in ids)


def test_start_time_continues_from_the_cursor_within_the_backlog() -> None:
    backlog = timedelta(hours=72)
    assert start_time(NOW, backlog, None) == NOW - backlog  # the first run
    recent = NOW - timedelta(minutes=3)
    assert start_time(NOW, backlog, recent) == recent  # a restart: where it stopped
    assert start_time(NOW, backlog, NOW - timedelta(days=30)) == NOW - backlog
    assert start_time(NOW, backlog, NOW + timedelta(hours=1)) == NOW  # never the future


def _run(settings: Settings, now: datetime, events: int = 60) -> list[dict[str, Any]]:
    pub = FakePublisher()
    # clock time (the backlog of 72 clock hours); service hours: tests/unit/producers/test_demo.py
    config = SimulationConfig(rate=5000, compression=24 * 3600, max_events=events,
                              max_seconds=20, invalid_rate=0.0, duplicate_rate=0.0,
                              around_the_clock=True)
    simulate(settings, config, now=lambda: now, publisher=pub)
    return pub.sent


def test_a_restarted_simulation_neither_collides_nor_replays(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, kafka_security_protocol="PLAINTEXT")
    first = _run(settings, NOW)
    reached = load_cursor(settings)
    assert cursor_path(settings).is_file() and reached is not None
    assert reached > NOW - timedelta(hours=72)
    second = _run(settings, NOW + timedelta(minutes=2))
    assert first and second
    assert not {e["event_id"] for e in first} & {e["event_id"] for e in second}
    assert not {e["case_id"] for e in first} & {e["case_id"] for e in second}
    # the second run continues where the first stopped: nothing from its past again
    assert min(e["occurred_at"] for e in second) > reached
    assert max(e["occurred_at"] for e in first) <= reached


def test_a_run_without_a_cursor_still_gets_fresh_ids(tmp_path: Path) -> None:
    """The cursor lost (another data directory, a crash): the 72 hours are replayed, but
    under new ids, so nothing conflicts with what the broker already holds."""
    first = _run(Settings(data_dir=tmp_path / "a", kafka_security_protocol="PLAINTEXT"), NOW)
    second = _run(Settings(data_dir=tmp_path / "b", kafka_security_protocol="PLAINTEXT"),
                  NOW + timedelta(seconds=1))
    assert not {e["event_id"] for e in first} & {e["event_id"] for e in second}


def test_a_stop_saves_the_simulated_time_of_the_stop_itself(tmp_path: Path) -> None:
    """The cursor a stop saves is the simulated time at the stop, not at the loop's last
    pass: a loop stalled half a second (a loaded machine) lost that half second's
    simulated half hour (CI: a SIGTERM a second in saved 58 simulated minutes)."""
    settings = Settings(data_dir=tmp_path, kafka_security_protocol="PLAINTEXT")
    wall = {"t": 0.0}

    def stalled_sleep(_seconds: float) -> None:
        wall["t"] += 0.5  # each pass of the loop takes half a second

    config = SimulationConfig(rate=20, compression=3600, max_seconds=60,
                              invalid_rate=0.0, duplicate_rate=0.0, around_the_clock=True)
    simulate(settings, config, now=lambda: NOW, publisher=FakePublisher(),
             monotonic=lambda: wall["t"], sleep=stalled_sleep,
             stop=lambda: wall["t"] >= 1.0)
    assert load_cursor(settings) == NOW - timedelta(hours=72) + timedelta(hours=1)
