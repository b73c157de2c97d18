"""Create the input and output topics; safe to run again and again."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka.admin import AdminClient, NewTopic

from onewindow.errors import OneWindowError
from onewindow.topics import Topics


class ProvisionError(OneWindowError):
    """A topic could not be created, or exists with a layout that breaks co-partitioning."""


@dataclass(frozen=True)
class TopicPlan:
    name: str
    partitions: int
    config: dict[str, str]


def material_index_topic(topics: Topics) -> str:
    """The materials app's internal repartition topic: one record per (material, index
    key), keyed by the index key (stream_apps.materials_processor)."""
    return f"{topics.prefix}onewindow.material-index"


def plan(topics: Topics, departments: Iterable[str], partitions: int) -> list[TopicPlan]:
    """Every topic the stack needs. Inputs and case-keyed outputs share one partition
    count so that they are co-partitioned by case_id; the materials app's index topic has
    the same count (its table partitions follow it)."""
    out = [TopicPlan(topics.input(d), partitions, {}) for d in sorted(departments)]
    out.append(TopicPlan(topics.case_state, partitions,
                         {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1",
                          "segment.ms": "3600000"}))
    out.append(TopicPlan(topics.case_activity, partitions, {}))
    out.append(TopicPlan(topics.material_links, partitions, {}))
    out.append(TopicPlan(topics.dead_letters, partitions, {}))
    out.append(TopicPlan(material_index_topic(topics), partitions, {}))
    return out


def ensure_topics(bootstrap: str, wanted: list[TopicPlan], replication: int = 1,
                  timeout: float = 30.0) -> list[str]:
    """Create what is missing; check what exists. Returns the names it created."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = admin.list_topics(timeout=timeout).topics
    for t in wanted:
        have = existing.get(t.name)
        if have is not None and len(have.partitions) != t.partitions:
            raise ProvisionError(
                f"topic {t.name} has {len(have.partitions)} partitions, expected {t.partitions}: "
                "all input topics must be co-partitioned (same count)")
    missing = [t for t in wanted if t.name not in existing]
    if not missing:
        return []
    futures = admin.create_topics(
        [NewTopic(t.name, num_partitions=t.partitions, replication_factor=replication,
                  config=t.config) for t in missing], operation_timeout=timeout)
    created = []
    for name, fut in futures.items():
        try:
            fut.result()
            created.append(name)
        except Exception as exc:
            err = exc.args[0] if exc.args else None
            if getattr(err, "name", lambda: "")() == "TOPIC_ALREADY_EXISTS":
                continue  # raced with another provisioner: harmless
            raise ProvisionError(f"creating topic {name} failed: {exc}") from exc
    return sorted(created)
