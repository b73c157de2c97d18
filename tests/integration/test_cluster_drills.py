"""Failure drills on the three-node cluster under simulated load (issue 17, point 4): the
case-state and materials workers and the sink as real processes, department traffic
flowing while a worker or a broker dies, and at the end the read model equal to the pure
fold of everything produced, no case, timeline entry or link lost or doubled, with no
manual step (tests/integration/cluster_drills.py).

- a worker of three SIGKILLed (standby replicas on): the survivors take its partitions
  over from their warm copies;
- the broker leading the most partitions SIGKILLed, then started again;
- the sink stopped while a broker restarts, started again after.
All three are part of `make test` (one xdist worker runs this module); the marker
`cluster_drill` selects them alone (`make test-cluster CLUSTER_TESTS=cluster_drill`).
Each starts its stack after `provision`, which returns only once every node enforces the
new prefix's ACLs (issue 17: a node that had not applied them yet refused a department's
producer, TOPIC_AUTHORIZATION_FAILED; docs/operations.md, "Failure drills").
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from onewindow.departments import load_registry
from onewindow.kafka_local import LocalKafkaCluster, leader_of_most, wait_in_sync
from onewindow.provision import material_index_topic
from tests.integration.cluster_drills import WAIT, DrillStack, Load, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.cluster, pytest.mark.cluster_drill]


def _all_topics(stack: DrillStack) -> list[str]:
    t = stack.topics
    return [*t.inputs(load_registry().codes), *t.outputs(), material_index_topic(t),
            t.calendar_checks, t.case_fold_changelog, t.material_index_changelog]


def test_a_worker_of_three_sigkilled_its_partitions_taken_over_from_standbys(
        kafka_cluster: LocalKafkaCluster, topic_prefix: str, tmp_path: Path) -> None:
    stack = DrillStack(kafka_cluster, tmp_path, topic_prefix, standby_replicas=1)
    load = Load(stack, cases=80, seed=17, rate=70.0)
    group = stack.topics.case_state_app
    inputs = set(stack.topics.inputs(load_registry().codes))
    changelog = stack.topics.case_fold_changelog
    try:
        for name in ("w1", "w2", "w3"):
            stack.worker(name)
        stack.materials()
        stack.sink()

        def three_with_standbys() -> bool:
            a = stack.assignments(group)
            held = [{p for t, p in parts if t in inputs} for parts in a.values()]
            return len(a) == 3 and all(held) and \
                all({p for t, p in parts if t == changelog} - h for parts, h
                    in zip(a.values(), held, strict=True))
        # every worker holds input partitions and standbys (changelog partitions of
        # inputs it does not hold): static membership keeps Faust's standby assignment
        wait_until(three_with_standbys, "three workers, each with partitions and standbys",
                   procs=stack.running())
        # the load starts now and pauses around the kill, so that most of it comes after
        # the kill on a slow machine too: once it had all been sent and committed while
        # the group formed, the killed worker's offsets had nowhere left to move
        load.start()
        load.wait_sent(0.35, procs=stack.running())
        load.pause()
        a = stack.assignments(group)
        victim = next(m for m in a if "-w2-" in m)
        owned = sorted({p for t, p in a[victim] if t in inputs})
        for p in owned:  # a warm copy of each of its partitions elsewhere
            assert any((changelog, p) in parts for m, parts in a.items() if m != victim), p
        killed = time.monotonic()
        stack.procs["w2"].stop(signal.SIGKILL)
        parts = [(t, p) for t in sorted(inputs) for p in owned]
        before = stack.committed(group, parts)
        load.resume()

        def taken_over() -> bool:
            now = stack.committed(group, parts)
            return any(now[k] > before[k] for k in parts)
        wait_until(taken_over, f"partitions {owned} of the killed worker to move on",
                   procs=stack.running())
        takeover = time.monotonic() - killed
        after = stack.assignments(group)
        assert len(after) == 2 and victim not in after
        assert {p for parts in after.values() for t, p in parts if t in inputs} == \
            set(range(6))
        load.finish(procs=stack.running())
        caught_up = stack.wait_caught_up()
        stack.assert_model_is_the_fold(load.cases)
    finally:
        stack.stop_all()
    print(f"\n[drill: worker SIGKILL] {len(load.events)} events; partitions {owned} moving "
          f"on {takeover:.1f}s after the kill (15 s session timeout); caught up "
          f"{caught_up:.1f}s after the last event")


def test_the_broker_leading_most_partitions_sigkilled_then_restarted(
        kafka_cluster: LocalKafkaCluster, topic_prefix: str, tmp_path: Path) -> None:
    cluster = kafka_cluster
    stack = DrillStack(cluster, tmp_path, topic_prefix)
    load = Load(stack, cases=60, seed=23, rate=60.0)
    try:
        stack.worker("w1")
        stack.materials()
        stack.sink()
        stack.wait_flowing()
        load.start()
        load.wait_sent(0.3, procs=stack.running())
        victim = leader_of_most(stack.admin_conf, _all_topics(stack))
        killed = time.monotonic()
        cluster.kill(victim)
        load.wait_sent(0.7, procs=stack.running())  # traffic goes on, on two nodes
        down = time.monotonic() - killed
        cluster.start_node(victim, timeout=WAIT)
        load.finish(procs=stack.running())
        wait_in_sync(stack.admin_conf, _all_topics(stack), timeout=WAIT)
        caught_up = stack.wait_caught_up()
        stack.assert_model_is_the_fold(load.cases)
    finally:
        stack.stop_all()
    print(f"\n[drill: broker SIGKILL] node {victim} down {down:.1f}s under "
          f"{len(load.events)} events; caught up {caught_up:.1f}s after the last event")


def test_the_sink_stopped_during_a_broker_restart(
        kafka_cluster: LocalKafkaCluster, topic_prefix: str, tmp_path: Path) -> None:
    cluster = kafka_cluster
    stack = DrillStack(cluster, tmp_path, topic_prefix)
    load = Load(stack, cases=60, seed=29, rate=60.0)
    try:
        stack.worker("w1")
        stack.materials()
        sink = stack.sink("sink1")
        stack.wait_flowing()
        load.start()
        load.wait_sent(0.3, procs=stack.running())
        victim = leader_of_most(stack.admin_conf, list(stack.topics.outputs()))
        cluster.stop_node(victim)  # a restart: a controlled stop first
        assert sink.stop(signal.SIGKILL) == -signal.SIGKILL  # mid-batch, no goodbye
        load.wait_sent(0.6, procs=stack.running())
        cluster.start_node(victim, timeout=WAIT)
        stack.sink("sink2")
        load.finish(procs=stack.running())
        wait_in_sync(stack.admin_conf, _all_topics(stack), timeout=WAIT)
        caught_up = stack.wait_caught_up()
        stack.assert_model_is_the_fold(load.cases)
    finally:
        stack.stop_all()
    print(f"\n[drill: sink stopped during a broker restart] {len(load.events)} events; "
          f"caught up {caught_up:.1f}s after the last event")
