"""Every long-running process's ``/metrics`` page, as the running process serves it, passes
Prometheus's own lint (`promtool check metrics`, Debian's prometheus package) and the
naming scheme (onewindow.observability.METRIC_CONCEPTS, docs/operations.md "Metric
names"): build info and process metrics on each, one lag metric
(``onewindow_consumer_lag{group,topic,partition}``) on each consumer.

The five processes (case-state worker, materials worker, sink, counter app, ingestion
gateway) run at once on the session broker under a new topic prefix, fed a few simulated
cases (and one batch through the gateway), so the labelled families have samples when
they are checked."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from onewindow.codec import to_json
from onewindow.kafka_local import free_port
from onewindow.observability import concept_of
from onewindow.topics import Topics
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from tests.integration.gateway_support import gateway_process
from tests.integration.ops_support import scrape
from tests.integration.server_support import log_tail
from tests.integration.streams import (
    ID_KEY,
    publish,
    start_materials_worker,
    start_worker,
    stop,
    worker_env,
)
from tests.staff_support import bearer_for

pytestmark = pytest.mark.integration

CONSUMERS = ("worker", "materials-worker", "sink")
LOGS = {"worker": "w1.log", "materials-worker": "m1.log", "sink": "sink.log",
        "counter": "counter.log"}


def _promtool_lint(text: str) -> str:
    """What `promtool check metrics` says of a page ('' when it has nothing to say)."""
    exe = shutil.which("promtool")
    assert exe, "promtool is missing: apt-get install prometheus (.ci/run does)"
    proc = subprocess.run([exe, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=60)
    out = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 0 or out, f"promtool exited {proc.returncode} silently"
    return out


def _check_page(process: str, text: str) -> None:
    lint = _promtool_lint(text)
    assert lint == "", f"{process}: promtool check metrics:\n{lint}"
    families = {f.name: f for f in text_string_to_metric_families(text)}
    outside = sorted(n for n in families
                     if not n.startswith(("process_", "python_")) and concept_of(n) is None)
    assert not outside, f"{process}: names outside the scheme: {outside}"
    [build] = families["onewindow_build_info"].samples
    assert build.value == 1 and build.labels["version"], process
    [rss] = families["process_resident_memory_bytes"].samples
    assert rss.value > 0, process
    lags = sorted(n for n in families if "lag" in n)
    if process in CONSUMERS:
        assert lags == ["onewindow_consumer_lag"], (process, lags)
        samples = families["onewindow_consumer_lag"].samples
        assert samples and all(s.labels["group"] and s.labels["topic"] for s in samples)
        assert {s.labels["partition"] for s in samples} <= {"0", "1", "2"}
    else:
        assert lags == [], (process, lags)


def _spawn(tmp: Path, name: str, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    with (tmp / LOGS[name]).open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", "onewindow_cli", *args], env=env,
                                stdout=log, stderr=subprocess.STDOUT)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_every_process_metrics_page_passes_promtool_and_the_scheme(
        kafka: str, provisioned: Topics, tmp_path: Path) -> None:
    started = time.monotonic()
    topics = provisioned
    db_url = f"sqlite:///{tmp_path / 'model.db'}"
    env = dict(worker_env(kafka, topics, tmp_path), ONEWINDOW_DATABASE_URL=db_url,
               ONEWINDOW_ID_HASH_KEY=ID_KEY)
    ports = {name: free_port() for name in (*CONSUMERS, "counter")}
    # all at once; the counter answers /healthz once the sink has created the model
    procs = {
        "worker": start_worker(kafka, topics, tmp_path, web_port=ports["worker"]),
        "materials-worker": start_materials_worker(kafka, topics, tmp_path,
                                                   web_port=ports["materials-worker"]),
        "sink": _spawn(tmp_path, "sink", env, "sink", "--metrics-port", str(ports["sink"])),
        "counter": _spawn(tmp_path, "counter", env, "counter", "--port", str(ports["counter"])),
    }
    counter = f"http://127.0.0.1:{ports['counter']}"
    try:
        cases = list(ScenarioGenerator(ScenarioConfig(seed=16)).cases(12))
        events = [e for c in cases for e in c]
        publish(kafka, topics, events)
        with gateway_process(tmp_path / "gateway", kafka, topics.prefix) as gw:
            # one event already published (a duplicate to the worker) and one rejected
            first = events[0]
            answer = httpx.post(f"{gw.base}/ingest/v1/events", json=[to_json(first), {}],
                                headers=gw.key(first["department"]), timeout=30)
            assert answer.status_code == 200, answer.text

            def fed() -> bool:
                for name, p in procs.items():
                    assert p.poll() is None, f"{name} exited:\n{log_tail(tmp_path / LOGS[name])}"
                worker, materials, sink = (scrape(ports[n]) for n in CONSUMERS)
                return (worker.get("onewindow_events_consumed_total", 0) >= len(events)
                        and materials.get("onewindow_materials_consumed_total", 0) > 0
                        and sink.get("onewindow_sink_records_total", 0) > 0
                        and all("onewindow_consumer_lag" in page
                                for page in (worker, materials, sink))
                        and _answers(f"{counter}/healthz"))

            # the workers measure their lag every 10 s: a page has its samples after one
            # or two rounds
            deadline = time.monotonic() + 120
            while not fed():
                assert time.monotonic() < deadline, "the pipeline did not take the events"
                time.sleep(0.5)
            ops = bearer_for(db_url, "ops")
            pages = {name: httpx.get(f"http://127.0.0.1:{ports[name]}/metrics", timeout=10).text
                     for name in CONSUMERS}
            pages["counter"] = httpx.get(f"{counter}/metrics", headers=ops, timeout=10).text
            pages["gateway"] = httpx.get(f"{gw.base}/metrics", timeout=10).text
    finally:
        for p in procs.values():
            stop(p)
    for process, text in pages.items():
        _check_page(process, text)
    # the labelled families of each process have samples: the lint saw them
    assert 'onewindow_gateway_events_total{department="' in pages["gateway"]
    assert "onewindow_materials_consumed_total{" in pages["materials-worker"]
    assert 'onewindow_stream_batch_records_bucket{le="1.0",step="route"}' in \
        pages["materials-worker"]
    assert 'onewindow_stream_batch_records_bucket{le="1.0",step="fold"}' in pages["worker"]
    assert 'onewindow_http_requests_total{method="GET"' in pages["counter"]
    assert "onewindow_read_model_up 1.0" in pages["counter"]
    assert f'group="{topics.prefix}onewindow-sink"' in pages["sink"]
    # the consumers stop cleanly on SIGTERM (uvicorn re-raises it: the counter's is -15)
    assert {n: procs[n].returncode for n in CONSUMERS} == dict.fromkeys(CONSUMERS, 0)
    print(f"\n[metrics pages] five processes checked in {time.monotonic() - started:.1f}s")
