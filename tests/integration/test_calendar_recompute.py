"""A calendar change re-publishes the deadlines of open cases (domain.md section 4), on
the real broker with a real case-state worker: on restart (the worker's start path) and
through `onewindow recompute-deadlines` (no restart); a closed case is untouched, and
keeps the deadline it closed with when a late event of its own (out of role) arrives
after the change. The same worker accepts a USCC from the operator's exception list (section 2) and counts it."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from onewindow.calendar_source import DEFAULT_OVERRIDE_FILE
from onewindow.codec import get_codec
from onewindow.domain.identifiers import is_valid_uscc
from onewindow.kafka_local import free_port
from onewindow.topics import Topics
from tests.integration.streams import (
    count_topic,
    publish,
    start_worker,
    stop,
    wait_caught_up,
    worker_env,
)
from tests.kafka_support import consumer_conf
from tests.unit.domain.helpers import VALID_USCC, accepted, task

pytestmark = pytest.mark.integration

#: Sunday 2025-12-28 made a working day by a (hypothetical) notice for 2026
MOVED = "\n  2026:\n    workdays: [2025-12-28]\n"
LEGACY_USCC = VALID_USCC[:-1] + "4"


def _events() -> list[dict[str, Any]]:
    open_case = accepted("o-acc", at="2025-12-26 10:00", amount=1, case_id="OPEN")
    open_case["applicant"] = dict(open_case["applicant"], id_number=LEGACY_USCC)
    return [
        open_case,  # due Mon 12-29, or Sun 12-28 once moved
        accepted("f-acc", at="2025-11-03 10:00", amount=3, case_id="FAR"),  # never moves
        accepted("c-acc", at="2025-12-26 10:00", amount=1, case_id="CLOSED"),
        task("c-1", "T1", "APPROVED", "2025-12-26 11:00", case_id="CLOSED"),
        task("c-2", "T2", "APPROVED", "2025-12-26 11:30", department="zjj", case_id="CLOSED"),
    ]


def _states(kafka: str, topics: Topics) -> dict[str, list[dict[str, Any]]]:
    """Every CaseState record on the topic now (up to each partition's high watermark),
    per case, in order."""
    codec = get_codec()
    consumer = Consumer({**consumer_conf(kafka), "group.id": f"read-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    try:
        parts = consumer.list_topics(topics.case_state, timeout=10).topics[
            topics.case_state].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topics.case_state, p),
                                                  timeout=10)[1] for p in parts}
        consumer.assign([TopicPartition(topics.case_state, p, 0) for p in parts])
        out: dict[str, list[dict[str, Any]]] = {}
        at = dict.fromkeys(parts, 0)
        deadline = time.monotonic() + 60
        while any(at[p] < ends[p] for p in parts) and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 0.5):
                if msg.error() is None:
                    at[msg.partition()] = msg.offset() + 1
                    state = codec.decode_record(msg.value())
                    out.setdefault(state["case_id"], []).append(state)
        assert all(at[p] >= ends[p] for p in parts), "case-state topic not read to its end"
        return out
    finally:
        consumer.close()


def _wait_for(kafka: str, topics: Topics, case_id: str, due: date, seen: int,
              timeout: float = 120) -> None:
    """Wait until a record of `case_id` after the first `seen` ones has due_date `due`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(s["due_date"] == due for s in _states(kafka, topics).get(case_id, [])[seen:]):
            return
        time.sleep(1)
    raise AssertionError(f"no new state of {case_id} due {due} within {timeout}s")


def _wait_version(kafka: str, topics: Topics, case_id: str, version: int,
                  timeout: float = 120) -> dict[str, list[dict[str, Any]]]:
    """Wait until a record of `case_id` has `version`; every case's records then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = _states(kafka, topics)
        if any(s["version"] == version for s in states.get(case_id, [])):
            return states
        time.sleep(1)
    raise AssertionError(f"no new state of {case_id} at version {version} within {timeout}s")


def _settled(kafka: str, topics: Topics, worker: subprocess.Popen[bytes]) -> None:
    """The worker committed every input and every calendar check: its checks are done
    and their records on the broker."""
    wait_caught_up(kafka, topics.case_state_app,
                   [*topics.inputs(["zwfw", "scjgj", "zjj"]), topics.calendar_checks],
                   procs=[worker], timeout=120)


def test_a_calendar_change_republishes_open_deadlines_on_restart_and_on_command(
        kafka: str, provisioned: Topics, tmp_path: Path) -> None:
    topics = provisioned
    override = tmp_path / "calendar.yaml"
    shipped = DEFAULT_OVERRIDE_FILE.read_text(encoding="utf-8")
    override.write_text(shipped, encoding="utf-8")
    exceptions = tmp_path / "uscc.txt"
    assert not is_valid_uscc(LEGACY_USCC)
    exceptions.write_text(f"# issued before GB 32100\n{LEGACY_USCC}\n", encoding="utf-8")
    env = {"ONEWINDOW_CALENDAR_OVERRIDE_FILE": str(override),
           "ONEWINDOW_USCC_EXCEPTIONS_FILE": str(exceptions)}
    publish(kafka, topics, _events())
    port = free_port()
    worker = start_worker(kafka, topics, tmp_path, web_port=port, env=env)
    try:
        _wait_for(kafka, topics, "OPEN", date(2025, 12, 29), 0)
        _settled(kafka, topics, worker)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
        assert b'onewindow_uscc_exceptions_accepted_total{department="zwfw"} 1.0' in metrics
        assert b"onewindow_calendar_info{" in metrics
    finally:
        stop(worker)
    assert worker.returncode == 0, (tmp_path / "w1.log").read_text()[-3000:]
    before = _states(kafka, topics)
    assert before["CLOSED"][-1]["closed_at"] is not None
    closed_due = before["CLOSED"][-1]["due_date"]
    assert closed_due == date(2025, 12, 29)
    counts = {c: len(v) for c, v in before.items()}

    # the operator enters the notice; the worker restarts: no event, a new deadline
    override.write_text(shipped + MOVED, encoding="utf-8")
    worker = start_worker(kafka, topics, tmp_path, env=env)
    try:
        _wait_for(kafka, topics, "OPEN", date(2025, 12, 28), counts["OPEN"])
        _settled(kafka, topics, worker)
        after = _states(kafka, topics)
        new = after["OPEN"][-1]
        assert new["due_date"] == date(2025, 12, 28)
        assert new["version"] == before["OPEN"][-1]["version"]  # no event was applied
        assert new["last_event_id"] is None
        assert len(after["CLOSED"]) == counts["CLOSED"]  # closed: untouched
        assert len(after["FAR"]) == counts["FAR"]  # its deadline did not move

        # a late out-of-role update of the closed case: it is re-published (version 4)
        # with the deadline it closed with, not the new one
        publish(kafka, topics, [task("c-3", "T1", "IN_REVIEW", "2025-12-26 12:00",
                                     department="zjj", case_id="CLOSED")])
        after = _wait_version(kafka, topics, "CLOSED", 4)
        assert [(s["version"], s["due_date"]) for s in after["CLOSED"][counts["CLOSED"]:]] \
            == [(4, closed_due)]
        assert after["CLOSED"][-1]["closed_at"] is not None

        # and back, by the command, without a restart
        override.write_text(shipped, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "onewindow_cli", "recompute-deadlines"],
            env={**worker_env(kafka, topics, tmp_path), **env}, capture_output=True,
            text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert "asked the case-state workers" in done.stdout
        _wait_for(kafka, topics, "OPEN", date(2025, 12, 29), len(after["OPEN"]))
        _settled(kafka, topics, worker)
        again = _states(kafka, topics)
        assert len(again["CLOSED"]) == len(after["CLOSED"])
        assert again["CLOSED"][-1]["due_date"] == closed_due
    finally:
        stop(worker)
    assert worker.returncode == 0, (tmp_path / "w1.log").read_text()[-3000:]
    assert count_topic(kafka, topics.dead_letters) == 0
