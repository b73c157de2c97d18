"""A real Prometheus (Debian's package) scrapes a real case-state worker on the real
broker, with the shipped ops/prometheus config and alert rules; the events the test
publishes show up in Prometheus's HTTP API."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from onewindow.kafka_local import free_port
from onewindow.topics import Topics
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from tests import REPO_ROOT
from tests.integration.ops_support import scrape, start_worker_on
from tests.integration.streams import publish, shuffled_with_duplicates, stop

pytestmark = pytest.mark.integration

PROM_DIR = REPO_ROOT / "ops" / "prometheus"


def _get(base: str, path: str, **params: str) -> Any:
    url = f"{base}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read().decode())


def _value(base: str, query: str) -> float | None:
    try:
        data = _get(base, "/api/v1/query", query=query)
    except OSError:
        return None
    result = data["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def _prometheus_config(tmp: Path, worker_port: int) -> Path:
    """The shipped prometheus.yml with its worker job pointed at the test's worker, a 1 s
    scrape interval, and the shipped alert rules."""
    conf = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    conf["global"].update(scrape_interval="1s", evaluation_interval="1s")
    conf["rule_files"] = [str(PROM_DIR / "alerts.yml")]
    (job,) = [j for j in conf["scrape_configs"] if j["job_name"] == "worker"]
    job["static_configs"] = [{"targets": [f"127.0.0.1:{worker_port}"]}]
    conf["scrape_configs"] = [job]
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(conf))
    return path


def test_prometheus_scrapes_the_worker_and_sees_the_applied_events(
        kafka: str, provisioned: Topics, tmp_path: Path) -> None:
    exe = shutil.which("prometheus")
    assert exe, "prometheus is missing: apt-get install prometheus (.ci/run does)"
    started = time.monotonic()
    cases = list(ScenarioGenerator(ScenarioConfig(seed=21)).cases(60))
    events = shuffled_with_duplicates(cases, seed=8, dup_rate=0.2)
    distinct = sum(len(c) for c in cases)
    duplicates = len(events) - distinct
    assert duplicates > 0

    worker_port, prom_port = free_port(), free_port()
    worker = start_worker_on(kafka, provisioned, tmp_path, worker_port)
    base = f"http://127.0.0.1:{prom_port}"
    prom_log = open(tmp_path / "prometheus.log", "ab")  # noqa: SIM115
    prom = subprocess.Popen(
        [exe, f"--config.file={_prometheus_config(tmp_path, worker_port)}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=prom_log, stderr=subprocess.STDOUT)
    try:
        publish(kafka, provisioned, events)
        applied = dups = lag = None
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            assert prom.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]
            assert worker.poll() is None, (tmp_path / "w1.log").read_text()[-3000:]
            applied = _value(base, "sum(onewindow_events_applied_total)")
            dups = _value(base, "sum(onewindow_events_duplicates_total)")
            lag = _value(base, 'sum(onewindow_consumer_lag{job="worker"})')
            if applied == distinct and dups == duplicates and lag == 0:
                break
            time.sleep(0.5)
        assert (applied, dups, lag) == (distinct, duplicates, 0), (
            f"Prometheus saw applied={applied} duplicates={dups} lag={lag}; "
            f"want {distinct}, {duplicates}, 0")
        assert _value(base, 'up{job="worker"}') == 1
        # the table-size gauge (refreshed every 15 s) counts exactly the cases
        keys = 0.0
        until = time.monotonic() + 25
        while time.monotonic() < until and keys != len(cases):
            keys = scrape(worker_port).get("onewindow_table_keys", 0.0)
            time.sleep(1)
        assert keys == len(cases)
        assert _value(base, "sum(onewindow_events_dead_lettered_total)") in (None, 0)
        assert _value(base, 'count(onewindow_build_info{job="worker"})') == 1
        assert (_value(base, 'process_resident_memory_bytes{job="worker"}') or 0) > 0
        rules = _get(base, "/api/v1/rules")["data"]["groups"]
        assert {g["name"] for g in rules} >= {"onewindow-availability", "onewindow-kafka",
                                              "onewindow-data"}
        assert all(r["health"] in ("ok", "unknown") for g in rules for r in g["rules"])
        print(f"scrape test: {time.monotonic() - started:.1f}s wall")  # noqa: T201
    finally:
        prom.terminate()
        try:
            prom.wait(15)
        except subprocess.TimeoutExpired:
            prom.kill()
        prom_log.close()
        stop(worker)
    assert worker.returncode == 0
