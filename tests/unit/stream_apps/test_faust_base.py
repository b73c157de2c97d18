"""The web server every Faust app gets from stream_apps.faust_base: on the metrics host,
none of Faust's views (docs/privacy.md). The running workers are crawled in
tests/integration/test_http_no_plaintext_ids.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from mode import CrashingSupervisor

from onewindow.config import Settings
from onewindow.observability.health import ConsumerHealth
from stream_apps.faust_base import new_app
from stream_apps.health import health_of


def test_faust_serves_no_view_of_its_own_and_binds_the_metrics_host(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Faust reads these from the environment and they would win over new_app's settings
    for name, value in {"WEB_BIND": "0.0.0.0", "WEB_HOST": "example.org",  # noqa: S104
                        "WEB_PORT": "1", "APP_WEB_TABLES_ENABLED": "true",
                        "APP_WEB_ROUTER_ENABLED": "true", "APP_WEB_STATS_ENABLED": "true",
                        "APP_WEB_GRAPH_ENABLED": "true", "APP_WEB_METRICS_ENABLED": "true",
                        "APP_DEBUG": "true"}.items():
        monkeypatch.setenv(name, value)
    settings = Settings(data_dir=tmp_path, kafka_security_protocol="PLAINTEXT")
    app = new_app(settings, app_id="unit-web", worker_name="unit", web_port=16066,
                  batch_max=10)
    assert (app.conf.web_bind, app.conf.web_host, app.conf.web_port) == (
        settings.metrics_host, settings.metrics_host, 16066)
    assert not (app.conf.web_tables_enabled or app.conf.web_router_enabled
                or app.conf.web_stats_enabled or app.conf.web_graph_enabled
                or app.conf.web_metrics_enabled)
    # the production index ({"status": "OK"}) and the health pages (stream_apps.health);
    # the apps add /metrics with app.page
    app.web.init_server()
    assert {r.resource.canonical for r in app.web.web_app.router.routes()} == {
        "/", "/healthz", "/readyz"}


def test_the_web_server_has_its_own_thread_and_a_crashed_agent_stops_the_worker(
        tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, kafka_security_protocol="PLAINTEXT",
                        stall_seconds=7)
    app = new_app(settings, app_id="unit-health", worker_name="unit", web_port=16067,
                  batch_max=10)
    # a blocked worker loop is still answered for (docs/operations.md, Health)
    assert app.conf.web_in_thread
    # Faust's default restarts a crashed agent after take_events acked its batch
    assert app.conf.agent_supervisor is CrashingSupervisor
    health = health_of(app)
    assert isinstance(health, ConsumerHealth) and health.stall == 7
    assert health_of(object()) is None


@pytest.mark.parametrize("factory", ["stream_apps.app", "stream_apps.materials_app"])
def test_every_table_shares_one_rocksdb_memory_budget(factory: str, tmp_path: Path) -> None:
    """Faust's defaults (a 64 MiB memtable, three of them, a 2 GiB block cache per
    partition) let a worker grow for hours (the soak, docs/benchmarks.md): every table
    partition of a worker opens RocksDB on one shared cache of ONEWINDOW_TABLE_MEMORY_MIB
    with its memtables charged to it, and the metrics page shows its use."""
    import importlib  # noqa: PLC0415 - the app module under test

    from prometheus_client import CollectorRegistry, generate_latest  # noqa: PLC0415
    from prometheus_client.parser import text_string_to_metric_families  # noqa: PLC0415

    from onewindow.security.id_protection import IdProtector  # noqa: PLC0415
    from stream_apps import table_store  # noqa: PLC0415

    module = importlib.import_module(factory)
    settings = Settings(data_dir=tmp_path, kafka_security_protocol="PLAINTEXT",
                        insecure_dev_key=True)
    app = module.create_app(settings, ids=IdProtector(b"k" * 32))
    memory = table_store.table_memory()
    assert memory is not None and memory.budget_bytes == settings.table_memory_mib << 20
    tables = list(app.tables.values())
    assert tables
    for table in tables:
        store = table.data
        assert isinstance(store, table_store.BoundedRocksDBStore)
        db = store.rocksdb_options.open(tmp_path / f"{table.name}-probe.db")
        for i in range(2000):
            db[f"k{i}".encode()] = b"v" * 1000
        # the memtables written are charged to the shared cache, within the budget
        assert 0 < memory.memtable_bytes() <= memory.usage_bytes() <= memory.budget_bytes
        db.close()
    registry = CollectorRegistry()
    table_store.register_metrics(registry)
    families = {f.name: f for f in text_string_to_metric_families(
        generate_latest(registry).decode())}
    [budget] = families["onewindow_table_memory_budget_bytes"].samples
    assert budget.value == memory.budget_bytes
    parts = {s.labels["part"]: s.value for s in families["onewindow_table_memory_bytes"].samples}
    assert set(parts) == {"cache", "memtables"}


def test_resuming_the_flow_keeps_the_current_generations_records(tmp_path: Path) -> None:
    """Issue 13: Faust's table recovery resumes the flow (emptying the stream queues) after
    the fetcher has already handed it records of the new generation; emptied, they were
    never processed and their offsets were committed past. Only the records a stream
    skips anyway go: an earlier generation's, and the changelog's."""
    import asyncio  # noqa: PLC0415
    from types import SimpleNamespace  # noqa: PLC0415

    from onewindow.security.id_protection import IdProtector  # noqa: PLC0415
    from onewindow.topics import Topics  # noqa: PLC0415
    from stream_apps.app import create_app  # noqa: PLC0415

    settings = Settings(data_dir=tmp_path, kafka_security_protocol="PLAINTEXT",
                        insecure_dev_key=True)
    app = create_app(settings, ids=IdProtector(b"k" * 32))
    [changelog] = app.tables.changelog_topics
    department = Topics(settings.topic_prefix).input("gaj")

    def event(topic: str, generation: int, offset: int) -> SimpleNamespace:
        return SimpleNamespace(message=SimpleNamespace(
            topic=topic, partition=0, offset=offset, generation_id=generation))

    async def resume_with_queued() -> list[tuple[str, int, int]]:
        app.consumer_generation_id = 2
        queue = app.FlowControlQueue(maxsize=10, clear_on_resume=True)
        for e in (event(department, 1, 7), event(department, 2, 0), event(changelog, 2, 5),
                  event(department, 2, 1)):
            queue.put_nowait(e)
        app.flow_control.resume()
        left = []
        while not queue.empty():
            m = queue.get_nowait().message
            left.append((m.topic, m.generation_id, m.offset))
        return left

    assert asyncio.run(resume_with_queued()) == [(department, 2, 0), (department, 2, 1)]
    assert app.flow_control.is_active()


def test_a_worker_is_a_static_member_named_by_its_host_name_and_state_directory(
        tmp_path: Path) -> None:
    """Issue 15: a restarted worker rejoins its group as the member it was (KIP-345), so
    it keeps its partitions without waiting for the broker to time the killed process
    out; two workers of one group never share an id."""
    from stream_apps.faust_base import group_instance_id  # noqa: PLC0415

    here = group_instance_id("worker", tmp_path / "stream" / "worker", host="h1")
    assert here == group_instance_id("worker", tmp_path / "stream" / "worker" / ".",
                                     host="h1")  # the same directory, however written
    assert here.startswith("h1-worker-")
    others = {group_instance_id("a", tmp_path / "stream" / "a", host="h1"),
              group_instance_id("worker", tmp_path / "other" / "worker", host="h1"),
              group_instance_id("worker", tmp_path / "stream" / "worker", host="h2")}
    assert here not in others and len(others) == 3
    settings = Settings(data_dir=tmp_path, kafka_security_protocol="PLAINTEXT")
    app = new_app(settings, app_id="unit-static", worker_name="worker", web_port=16068,
                  batch_max=10)
    assert app.conf.consumer_group_instance_id == group_instance_id(
        "worker", tmp_path / "stream" / "worker")


def test_a_restarted_static_member_takes_back_its_assignment_under_another_url(
        tmp_path: Path) -> None:
    """The broker hands a rejoining static member the assignment its previous process was
    given, with that process's web URL in Faust's metadata (its port may have changed):
    Faust's own assignor asserted the URL and stopped the consumer. The partitions are
    still checked."""
    import zlib  # noqa: PLC0415

    from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment  # noqa: PLC0415
    from faust.assignor.client_assignment import (  # noqa: PLC0415
        ClientAssignment,
        ClientMetadata,
    )

    from stream_apps.faust_base import PromptTableManager, StaticMemberAssignor  # noqa: PLC0415

    settings = Settings(data_dir=tmp_path, kafka_security_protocol="PLAINTEXT")
    app = new_app(settings, app_id="unit-assign", worker_name="unit", web_port=16069,
                  batch_max=10)
    assert isinstance(app.tables, PromptTableManager)
    assignor = app.assignor
    assert isinstance(assignor, StaticMemberAssignor)
    ours = ClientAssignment(actives={"t": [0, 2]}, standbys={})

    def given(partitions: list[int]) -> ConsumerProtocolMemberAssignment:
        metadata = ClientMetadata(assignment=ours, url="http://elsewhere:1",
                                  changelog_distribution={})
        return ConsumerProtocolMemberAssignment(
            0, [("t", partitions)], zlib.compress(metadata.dumps()))

    assignor.on_assignment(given([0, 2]))
    assert assignor.assigned_actives() == {("t", 0), ("t", 2)}
    with pytest.raises(RuntimeError, match="partition assignment"):
        assignor.on_assignment(given([0, 1, 2]))
