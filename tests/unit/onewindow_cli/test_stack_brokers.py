"""`onewindow up --brokers N` (onewindow_cli/stack.py): which Kafka it runs from the jars,
what it supervises of it, and the replication factor its topics and children get. No
broker is started here (tests/integration/test_kafka_cluster.py runs the cluster)."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from onewindow.config import Settings, get_settings
from onewindow.kafka_local import KafkaLocalError, LocalKafka, LocalKafkaCluster
from onewindow.security.kafka_auth import kafka_env
from onewindow_cli import stack
from onewindow_cli.cli import build_parser


@pytest.fixture
def fresh_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """`up` reads the settings once per process: a clean read for each test."""
    monkeypatch.setenv("ONEWINDOW_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("ONEWINDOW_REPLICATION_FACTOR", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_one_broker_or_a_cluster_of_three_on_consecutive_ports(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, kafka_port=29092, kafka_controller_port=29093)
    single = stack.local_kafka(s, 1)
    assert isinstance(single, LocalKafka) and single.data_dir == tmp_path / "kafka"
    assert [b.name for b in stack.broker_processes(single, threading.Event())] == ["kafka"]
    cluster = stack.local_kafka(s, 3)
    assert isinstance(cluster, LocalKafkaCluster)
    assert cluster.data_dir == (tmp_path / "kafka-cluster").resolve()
    assert cluster.bootstrap == "127.0.0.1:29092,127.0.0.1:29094,127.0.0.1:29096"
    procs = stack.broker_processes(cluster, threading.Event())
    assert [b.name for b in procs] == ["kafka-1", "kafka-2", "kafka-3"]
    assert [b.kafka for b in procs] == cluster.nodes  # each node restarted alone
    assert procs[1].log == (tmp_path / "kafka-cluster" / "node-2" / "server.log").resolve()


def test_a_data_directory_keeps_the_kind_of_kafka_it_has(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    (tmp_path / "kafka").mkdir()
    with pytest.raises(KafkaLocalError, match="--brokers 1"):
        stack.local_kafka(s, 3)
    (tmp_path / "kafka").rmdir()
    (tmp_path / "kafka-cluster").mkdir()
    with pytest.raises(KafkaLocalError, match="--brokers 3"):
        stack.local_kafka(s, 1)


def test_brokers_is_one_or_three() -> None:
    assert build_parser().parse_args(["up"]).brokers == 1
    assert build_parser().parse_args(["up", "--brokers", "3"]).brokers == 3
    with pytest.raises(SystemExit):
        build_parser().parse_args(["up", "--brokers", "2"])


def _run_up(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> dict[str, Any]:
    """What `cmd_up` hands to `up` (which is not run)."""
    seen: dict[str, Any] = {}

    def fake_up(settings: Settings, **kw: Any) -> int:
        seen.update(kw, settings=settings)
        return 0

    monkeypatch.setattr(stack, "up", fake_up)
    args: argparse.Namespace = build_parser().parse_args(argv)
    assert args.func(args) == 0
    return seen


@pytest.mark.usefixtures("fresh_settings")
def test_three_brokers_mean_three_copies_for_the_topics_and_the_children(
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _run_up(monkeypatch, ["up", "--brokers", "3"])
    assert seen["brokers"] == 3 and seen["settings"].replication_factor == 3
    # the children (the workers create their changelogs) get it with the cluster
    assert kafka_env(seen["settings"])["ONEWINDOW_REPLICATION_FACTOR"] == "3"
    assert _run_up(monkeypatch, ["up"])["settings"].replication_factor == 1


@pytest.mark.usefixtures("fresh_settings")
def test_the_operators_replication_factor_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEWINDOW_REPLICATION_FACTOR", "2")
    get_settings.cache_clear()
    assert _run_up(monkeypatch, ["up", "--brokers", "3"])["settings"].replication_factor == 2
