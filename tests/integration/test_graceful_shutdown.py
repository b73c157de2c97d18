"""SIGTERM stops a case-state worker cleanly: it finishes the batch in hand, commits, and
exits 0 within 30 s; a restarted worker continues exactly where it stopped (no record
consumed twice, none skipped)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from onewindow.kafka_local import free_port
from onewindow.topics import Topics
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from tests.integration.ops_support import scrape, start_worker_on
from tests.integration.streams import count_topic, publish, shuffled_with_duplicates, stop

pytestmark = pytest.mark.integration


def test_sigterm_mid_stream_commits_and_a_restart_reprocesses_nothing(
        kafka: str, provisioned: Topics, tmp_path: Path) -> None:
    cases = list(ScenarioGenerator(ScenarioConfig(seed=31)).cases(400))
    events = shuffled_with_duplicates(cases, seed=9)
    total = len(events)
    publish(kafka, provisioned, events)

    port = free_port()
    worker = start_worker_on(kafka, provisioned, tmp_path, port)
    deadline = time.monotonic() + 60
    consumed = 0.0
    while time.monotonic() < deadline and consumed == 0:
        assert worker.poll() is None, (tmp_path / "w1.log").read_text()[-3000:]
        consumed = scrape(port).get("onewindow_events_consumed_total", 0.0)
        time.sleep(0.05)
    assert consumed > 0, "the worker never started consuming"

    worker.send_signal(signal.SIGTERM)  # mid-stream: it is working through `total` records
    t0 = time.monotonic()
    try:
        code = worker.wait(30)
    except Exception:
        worker.kill()
        raise
    stopped_in = time.monotonic() - t0
    assert code == 0, (tmp_path / "w1.log").read_text()[-3000:]

    # Every consumed record of this stream ends as exactly one case-activity record (an
    # applied event, or a duplicate re-emitting its activity; no dead letters here), so the
    # topic counts what the first run processed and flushed.
    first_run = count_topic(kafka, provisioned.case_activity)
    assert 0 < first_run <= total

    port = free_port()
    worker = start_worker_on(kafka, provisioned, tmp_path, port, name="w1")
    try:
        deadline = time.monotonic() + 90
        second_run = 0.0
        while time.monotonic() < deadline:
            assert worker.poll() is None, (tmp_path / "w1.log").read_text()[-3000:]
            second_run = scrape(port).get("onewindow_events_consumed_total", 0.0)
            if first_run + second_run >= total:
                break
            time.sleep(0.2)
        time.sleep(2.0)  # anything re-delivered late would show up now
        second_run = scrape(port).get("onewindow_events_consumed_total", 0.0)
        # Precisely the records the first run had not processed: a record the first run
        # processed but failed to commit would be consumed again (and counted twice).
        assert second_run == total - first_run, (first_run, second_run, total)
        assert count_topic(kafka, provisioned.case_activity) == total
        assert count_topic(kafka, provisioned.dead_letters) == 0
    finally:
        stop(worker)
    assert worker.returncode == 0
    print(f"SIGTERM: stopped in {stopped_in:.1f}s after {first_run}/{total} records")  # noqa: T201
