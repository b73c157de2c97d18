"""Duplicate-material detection on the real broker: the case-state worker and the
materials worker as processes, a shuffled and replayed scenario stream, and the distinct
links read back equal to the pure rules over every pair."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from onewindow.domain.materials import all_links, avoidable_set, material_from_event
from onewindow.kafka_local import free_port
from onewindow.topics import Topics
from onewindow_cli.bench.materials import as_links, read_links, scrape
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from tests.integration.streams import (
    count_topic,
    publish,
    shuffled_with_duplicates,
    start_materials_worker,
    start_worker,
    stop,
    wait_stream_apps_caught_up,
)
from tests.kafka_support import consumer_conf

pytestmark = pytest.mark.integration

MATERIAL_TYPES = ("MaterialSubmitted", "CertificateIssued")


def _scenario(n: int, seed: int) -> tuple[list[list[dict]], list]:
    cases = list(ScenarioGenerator(ScenarioConfig(seed=seed)).cases(n))
    materials = [material_from_event(e) for c in cases for e in c if e["type"] in MATERIAL_TYPES]
    return cases, materials


def _wait_done(kafka: str, topics: Topics, procs: list) -> None:
    wait_stream_apps_caught_up(kafka, topics, procs)


def _assert_equal_to_pure_rules(kafka: str, topics: Topics, materials: list) -> None:
    want = all_links(materials)
    pairs, records = read_links(consumer_conf(kafka), topics.material_links)
    assert records >= len(pairs)
    got = as_links(pairs)
    assert len(got - want) == 0, sorted(got - want)[:5]
    assert len(want - got) == 0, sorted(want - got)[:5]
    avoidable = {r["avoidable_material"] for r in pairs.values() if r["avoidable_material"]}
    assert avoidable == avoidable_set(materials)


def test_shuffled_replayed_stream_gives_the_links_of_the_pure_rules(
        kafka: str, provisioned: Topics, tmp_path: Path) -> None:
    cases, materials = _scenario(200, seed=31)
    verdicts = Counter(str(lk.verdict) for lk in all_links(materials))
    assert set(verdicts) == {"CONFLICT", "EXACT", "SAME_DOCUMENT", "SAME_CONTENT"}, verdicts
    assert verdicts["CONFLICT"] >= 10
    assert any(m.kind == "CertificateIssued" for m in materials)
    events = shuffled_with_duplicates(cases, seed=7, dup_rate=0.15)
    publish(kafka, provisioned, events)
    state = start_worker(kafka, provisioned, tmp_path, name="w1")
    port = free_port()
    mats = start_materials_worker(kafka, provisioned, tmp_path, name="m1", web_port=port)
    try:
        _wait_done(kafka, provisioned, [state, mats])
        _assert_equal_to_pure_rules(kafka, provisioned, materials)
        m = scrape(port)
        assert m["onewindow_materials_links_total"] == sum(verdicts.values())
        assert m["onewindow_materials_links_total{verdict=CONFLICT}"] == verdicts["CONFLICT"]
        assert m["onewindow_materials_conflicts_total"] == verdicts["CONFLICT"]
        assert m["onewindow_materials_avoidable_links_total"] >= len(avoidable_set(materials))
        assert 0 < m["onewindow_materials_avoidable_total"]
        assert m["onewindow_materials_consumed_total"] >= len(materials)
    finally:
        stop(mats)
        stop(state)
    assert mats.returncode == 0, (tmp_path / "m1.log").read_text()[-3000:]
    assert count_topic(kafka, provisioned.dead_letters) == 0


def test_sigkill_of_the_materials_worker_loses_no_link(
        kafka: str, provisioned: Topics, tmp_path: Path) -> None:
    cases, materials = _scenario(150, seed=32)
    events = shuffled_with_duplicates(cases, seed=8)
    half = len(events) // 2
    publish(kafka, provisioned, events[:half])
    state = start_worker(kafka, provisioned, tmp_path, name="w1")
    mats = start_materials_worker(kafka, provisioned, tmp_path, name="m1")
    try:
        deadline = time.monotonic() + 60
        while count_topic(kafka, provisioned.material_links) < 20 and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        publish(kafka, provisioned, events[half:])
        stop(mats, signal.SIGKILL)
        mats = start_materials_worker(kafka, provisioned, tmp_path, name="m1")
        _wait_done(kafka, provisioned, [state, mats])
        _assert_equal_to_pure_rules(kafka, provisioned, materials)
    finally:
        stop(mats)
        stop(state)
