"""ops/: the Prometheus configs and alert rules pass promtool, the rules' unit tests pass,
and every metric the alerts and the Grafana dashboard use exists in the code base."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from onewindow.config import Settings
from onewindow.observability import instrument
from tests import REPO_ROOT

OPS = REPO_ROOT / "ops"
PROM = OPS / "prometheus"
DASHBOARD = OPS / "grafana" / "dashboards" / "onewindow.json"
SOURCES = ("onewindow", "stream_apps", "sinks", "counter", "producers")
METRIC = re.compile(r"\b(onewindow_[a-z0-9_]+)\b")


def promtool(*args: str, cwd: Path = PROM) -> str:
    exe = shutil.which("promtool")
    assert exe, "promtool is missing: apt-get install prometheus (.ci/run does)"
    proc = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def test_promtool_check_rules() -> None:
    out = promtool("check", "rules", "alerts.yml")
    assert "SUCCESS" in out


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.compose.yml"])
def test_promtool_check_config(config: str, tmp_path: Path) -> None:
    """The config as shipped, but for the counter's bearer-token file (promtool checks it
    exists; the operator creates it with `onewindow users token`)."""
    conf = yaml.safe_load((PROM / config).read_text())
    [counter] = [j for j in conf["scrape_configs"] if j["job_name"] == "counter"]
    assert counter["authorization"]["type"] == "Bearer"
    token = tmp_path / "counter-metrics.token"
    token.write_text("owt_test\n")
    counter["authorization"]["credentials_file"] = str(token)
    for f in PROM.iterdir():
        if f.suffix == ".yml" and f.name != config:
            (tmp_path / f.name).write_text(f.read_text())
    (tmp_path / config).write_text(yaml.safe_dump(conf))
    out = promtool("check", "config", config, cwd=tmp_path)
    assert "is valid prometheus config file" in out


def test_promtool_rule_unit_tests() -> None:
    assert "SUCCESS" in promtool("test", "rules", "alerts.test.yml")


def test_required_alerts_exist_and_are_tested() -> None:
    groups = yaml.safe_load((PROM / "alerts.yml").read_text())["groups"]
    alerts = {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}
    for name in ("OnewindowStreamAppDown", "OnewindowSinkDown", "OnewindowConsumerLagGrowing",
                 "OnewindowDeadLettersHigh", "OnewindowEndToEndLatencyHigh",
                 "OnewindowOverdueCasesRising"):
        assert name in alerts
        assert alerts[name]["labels"]["severity"] in ("page", "ticket")
        assert alerts[name]["annotations"]["summary"]
    tests = yaml.safe_load((PROM / "alerts.test.yml").read_text())["tests"]
    tested = {a["alertname"] for t in tests for a in t["alert_rule_test"] if a["exp_alerts"]}
    assert len(tested) >= 2 and tested <= set(alerts)


def test_both_prometheus_configs_scrape_every_process() -> None:
    for name in ("prometheus.yml", "prometheus.compose.yml"):
        conf = yaml.safe_load((PROM / name).read_text())
        jobs = {j["job_name"] for j in conf["scrape_configs"]}
        assert {"worker", "materials-worker", "sink", "counter", "gateway"} <= jobs, name
        assert conf["rule_files"] == ["alerts.yml"]


def test_local_targets_are_the_configured_ports() -> None:

    s = Settings()
    want = {"worker": s.worker_web_port, "materials-worker": s.materials_web_port,
            "sink": s.sink_metrics_port, "counter": s.counter_port,
            "gateway": s.gateway_port}
    conf = yaml.safe_load((PROM / "prometheus.yml").read_text())
    for job in conf["scrape_configs"]:
        if job["job_name"] in want:
            (target,) = job["static_configs"][0]["targets"]
            assert target == f"127.0.0.1:{want[job['job_name']]}"


# --------------------------------------------------------------------------- metric names


def _source_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for d in SOURCES
                     for p in (REPO_ROOT / d).rglob("*.py"))


def _defined(name: str, text: str) -> bool:
    """Whether the code declares ``name`` (a histogram's _bucket/_sum/_count series, a
    counter declared with or without its _total suffix)."""
    candidates = {name}
    for suffix in ("_bucket", "_sum", "_count", "_total", "_created"):
        if name.endswith(suffix):
            candidates.add(name[: -len(suffix)])
    return any(f'"{c}"' in text or f"'{c}'" in text for c in candidates)


def _exprs() -> list[tuple[str, str]]:
    out = []
    for g in yaml.safe_load((PROM / "alerts.yml").read_text())["groups"]:
        for r in g["rules"]:
            out.append((f"alert {r.get('alert') or r.get('record')}", r["expr"]))
    dash = json.loads(DASHBOARD.read_text())
    for p in dash["panels"]:
        for t in p.get("targets", []):
            out.append((f"panel {p['title']}", t["expr"]))
    return out


def test_every_onewindow_metric_used_exists_in_the_code() -> None:
    text = _source_text()
    missing = sorted({(where, m) for where, expr in _exprs() for m in METRIC.findall(expr)
                      if not _defined(m, text)})
    assert not missing, f"metrics used but defined nowhere: {missing}"


def test_other_metrics_used_are_the_standard_ones_we_register() -> None:


    registry = instrument(CollectorRegistry())
    standard = {s.name for m in registry.collect() for s in m.samples} | {"up"}
    for where, expr in _exprs():
        for name in re.findall(r"\b((?:process|python)_[a-z0-9_]+)\b", expr):
            assert name in standard, (where, name)
    assert "process_resident_memory_bytes" in standard


def test_dashboard_is_provisionable() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] and dash["title"] and dash["panels"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    titles = " ".join(p["title"].lower() for p in dash["panels"])
    for topic in ("throughput", "lag", "latency", "dead letters by reason", "verdict",
                  "overdue", "due soon"):
        assert topic in titles or topic in json.dumps(dash).lower(), topic
    for p in dash["panels"]:
        assert p["type"] in ("row", "timeseries", "stat", "bargauge", "table")
        for t in p.get("targets", []):
            assert t["datasource"]["uid"] == "prometheus"
    ds = yaml.safe_load((OPS / "grafana/provisioning/datasources/prometheus.yml").read_text())
    assert ds["datasources"][0]["uid"] == "prometheus"
    prov = yaml.safe_load((OPS / "grafana/provisioning/dashboards/onewindow.yml").read_text())
    assert prov["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
