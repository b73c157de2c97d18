"""Build info, process metrics, consumer lag, supervisor gauges and JSON logs."""

from __future__ import annotations

import io
import json
import logging
from collections import namedtuple
from datetime import UTC, date, datetime, timedelta

from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import create_engine, insert

from onewindow import __version__
from onewindow.calendar_source import load_calendar
from onewindow.config import Settings
from onewindow.domain.identifiers import resident_id_check_char
from onewindow.logs import JsonFormatter, configure_logging, scrub_ids
from onewindow.observability import instrument
from onewindow.observability.lag import ConsumerLag, faust_lags, lag_of
from onewindow.observability.supervisor import SupervisorCollector
from onewindow.read_model.engine import make_engine
from onewindow.read_model.tables import Case, Material, metadata
from stream_apps.metrics import WorkerMetrics

TP = namedtuple("TP", "topic partition")


def test_build_info_and_process_metrics_on_a_private_registry() -> None:
    r = instrument(CollectorRegistry())
    text = generate_latest(r).decode()
    assert 'onewindow_build_info{python="' in text and f'version="{__version__}"' in text
    assert r.get_sample_value("process_resident_memory_bytes") > 0
    assert r.get_sample_value("process_cpu_seconds_total") is not None
    assert "python_info" in text


def test_worker_registry_has_build_info_process_metrics_and_lag() -> None:

    m = WorkerMetrics()
    m.lag.update("g", {("dept.gaj.events", 0): 5})
    text = generate_latest(m.registry).decode()
    for name in ("onewindow_build_info", "process_cpu_seconds_total",
                 'onewindow_consumer_lag{group="g",partition="0",topic="dept.gaj.events"} 5.0'):
        assert name in text


def test_consumer_lag_drops_partitions_no_longer_owned() -> None:
    r = CollectorRegistry()
    lag = ConsumerLag(r)
    lag.update("g", {("t", 0): 3, ("t", 1): 7})
    assert r.get_sample_value("onewindow_consumer_lag",
                              {"group": "g", "topic": "t", "partition": "1"}) == 7
    lag.update("g", {("t", 0): 0})
    assert r.get_sample_value("onewindow_consumer_lag",
                              {"group": "g", "topic": "t", "partition": "1"}) is None
    assert r.get_sample_value("onewindow_consumer_lag",
                              {"group": "g", "topic": "t", "partition": "0"}) == 0


def test_lag_arithmetic() -> None:
    assert lag_of(100, 40) == 60
    assert lag_of(100, 120) == 0
    assert lag_of(100, -1001, low=30) == 70  # no position yet: from the low watermark
    assert lag_of(100, None) == 100
    hw = {TP("a", 0): 10, TP("a", 1): None, TP("changelog", 0): 99}
    assert faust_lags(hw, {TP("a", 0): 4}, ["a"]) == {("a", 0): 6}


def _resident_id() -> str:
    first17 = "11010519491231002"
    return first17 + resident_id_check_char(first17)


def test_json_logs_one_object_per_line_with_extras_and_no_id_numbers() -> None:
    buf = io.StringIO()
    handler = configure_logging(Settings(log_json=True, log_level="DEBUG"), stream=buf)
    try:
        number = _resident_id()
        log = logging.getLogger("onewindow.test")
        log.info("lookup for %s done", number, extra={"case_id": "C1", "holder": number,
                                                       "n": 3})
        try:
            raise ValueError(f"bad {number}")
        except ValueError:
            log.exception("failed")
        lines = buf.getvalue().splitlines()
        assert len(lines) == 2
        first, second = (json.loads(x) for x in lines)
        assert set(first) >= {"ts", "level", "logger", "msg"}
        assert first["level"] == "INFO" and first["logger"] == "onewindow.test"
        assert first["case_id"] == "C1" and first["n"] == 3
        assert datetime.fromisoformat(first["ts"]).tzinfo is not None
        assert number not in buf.getvalue()
        assert "********" in first["msg"] and "********" in first["holder"]
        assert "ValueError" in second["exc"]
    finally:
        logging.getLogger().removeHandler(handler)


def test_plain_logs_mask_ids_too_and_level_is_honoured() -> None:
    buf = io.StringIO()
    handler = configure_logging(Settings(log_json=False, log_level="WARNING"), stream=buf)
    try:
        log = logging.getLogger("onewindow.test")
        log.info("hidden")
        log.warning("id %s", _resident_id())
        out = buf.getvalue()
        assert "hidden" not in out and _resident_id() not in out and "WARNING" in out
    finally:
        logging.getLogger().removeHandler(handler)


def test_scrub_leaves_other_numbers_alone() -> None:
    assert scrub_ids("offset 123456789012345670 of 3") == "offset 123456789012345670 of 3"
    assert scrub_ids("no digits") == "no digits"
    assert _resident_id() not in scrub_ids(f"x {_resident_id()} y")
    # the logs use the derived topics' scrubber: any separators, after another number too
    rid = _resident_id()
    typed = f"{rid[:6]}\u2014{rid[6:14]}\u200b{rid[14:]}"
    assert rid[6:14] not in scrub_ids(f"case 2025 0001 {typed}").replace("\u200b", "")
    assert JsonFormatter().format(logging.LogRecord("a", 20, "", 0, "m", (), None))


def test_supervisor_gauges_from_the_read_model() -> None:


    now = datetime(2025, 6, 10, 6, 0, tzinfo=UTC)  # a Tuesday, 14:00 in Shanghai
    engine = make_engine("sqlite://")
    metadata.create_all(engine)

    def case(cid: str, status: str, due: datetime | None, *, closed: bool = False,
             paused: bool = False) -> dict:
        return {"case_id": cid, "version": 1, "status": status, "accepted_at": now,
                "due_at": due, "due_date": due.date() if due else None,
                "closed_at": now if closed else None,
                "paused_since": now if paused else None, "recorded_at": now}

    rows = [
        case("overdue", "IN_REVIEW", now - timedelta(hours=1)),
        case("soon", "IN_REVIEW", datetime(2025, 6, 11, 15, 59, tzinfo=UTC)),
        case("later", "RECEIVED", now + timedelta(days=20)),
        case("paused", "SUPPLEMENT_REQUESTED", now - timedelta(days=1), paused=True),
        case("closed", "APPROVED", now - timedelta(days=1), closed=True),
    ]

    def material(mid: str, avoidable: bool, when: datetime) -> dict:
        return {"material_id": mid, "kind": "MaterialSubmitted", "material_type": "X",
                "holder_id_type": "ID_CARD", "holder_id_hash": "h", "holder_id_masked": "m",
                "sha256": "s", "declared_fields": "{}", "occurred_at": when,
                "case_id": "c", "department": "zwfw", "event_id": mid,
                "avoidable": avoidable, "recorded_at": when}

    with engine.begin() as c:
        c.execute(insert(Case), rows)
        c.execute(insert(Material), [material("m1", True, now),
                                     material("m2", False, now),
                                     material("m3", True, now - timedelta(days=1))])
    r = CollectorRegistry()
    r.register(SupervisorCollector(engine, load_calendar(), clock=lambda: now))
    assert r.get_sample_value("onewindow_read_model_up") == 1
    assert r.get_sample_value("onewindow_cases_overdue") == 1
    assert r.get_sample_value("onewindow_cases_due_soon") == 1
    assert r.get_sample_value("onewindow_materials_avoidable_today") == 1
    assert r.get_sample_value("onewindow_cases_open", {"status": "IN_REVIEW"}) == 2
    assert r.get_sample_value("onewindow_cases_open", {"status": "APPROVED"}) is None
    assert date(2025, 6, 10).weekday() == 1


def test_supervisor_survives_a_broken_database() -> None:


    r = CollectorRegistry()
    r.register(SupervisorCollector(create_engine("sqlite:///nonexistent-dir/x/y.db"), None))
    assert r.get_sample_value("onewindow_read_model_up") == 0
    assert r.get_sample_value("onewindow_cases_overdue") is None
