"""`onewindow up --workers N` (issue 17, point 2): N case-state and N materials workers,
each with its own name (its state directory) and web port, the first keeping the single
stack's; one standby replica of each table partition from two workers on; a metrics URL
printed for each. The workers themselves run in tests/integration/test_cluster_drills.py."""

from __future__ import annotations

from onewindow.config import Settings
from onewindow_cli.stack import service_urls, standby_for, worker_commands


def test_n_workers_of_each_kind_with_their_own_names_and_ports() -> None:
    s = Settings(worker_web_port=16066, materials_web_port=16067)
    assert worker_commands(s, 1) == [("worker", ["worker"]),
                                     ("materials-worker", ["materials-worker"])]
    got = worker_commands(s, 3)
    assert got[:2] == worker_commands(s, 1)  # the first keeps its state and port
    assert got[2:] == [
        ("worker-2", ["worker", "--name", "worker-2", "--web-port", "16068"]),
        ("materials-worker-2", ["materials-worker", "--name", "materials-2", "--web-port",
                                "16069"]),
        ("worker-3", ["worker", "--name", "worker-3", "--web-port", "16070"]),
        ("materials-worker-3", ["materials-worker", "--name", "materials-3", "--web-port",
                                "16071"])]
    names = [n for n, _ in got]
    assert len(set(names)) == len(names)
    ports = [a[-1] for _, a in got[2:]] + ["16066", "16067"]
    assert len(set(ports)) == len(ports)


def test_a_metrics_url_for_every_worker() -> None:
    s = Settings(worker_web_port=16066, materials_web_port=16067)
    started = [n for n, _ in worker_commands(s, 2)]
    assert dict(service_urls(s, started)) == {
        "worker metrics": "http://127.0.0.1:16066/metrics",
        "materials metrics": "http://127.0.0.1:16067/metrics",
        "worker 2 metrics": "http://127.0.0.1:16068/metrics",
        "materials 2 metrics": "http://127.0.0.1:16069/metrics"}


def test_standby_replicas_only_with_someone_to_keep_them() -> None:
    assert standby_for(1) == 0
    assert standby_for(2) == standby_for(3) == 1
    assert Settings().table_standby_replicas == 0
