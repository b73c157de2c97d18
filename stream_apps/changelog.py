"""A Faust table whose changelog goes out through librdkafka: `ChangelogTable`.

Every write to a Faust table is also sent to its changelog topic, the table's copy on the
broker (a lost local store is restored from it). Faust sends it with its own producer,
aiokafka, on the worker's event loop: per record a Python send, and the produce requests
written to the socket by the loop's thread. In the case-state worker that was about a
fifth of the loop's time (docs/benchmarks.md, "Case state": the profile). Here the
records go through the worker's `OutputProducer` instead (confluent-kafka: batched,
compressed and sent by librdkafka's own threads), as the outputs already do.

What Faust does with them stays as it was:

* **the same records**: the table's key and value bytes (raw codec), on the changelog
  topic Faust declares (`<app id>-<table>-changelog`), on the partition of the event
  being processed (`Table.partition_for_key`), as Faust's `send_changelog` sends them;
* **the persisted offset**: once the broker has a record, its offset is written to the
  partition's store (`Store.set_persisted_offset`), as Faust does on its producer's
  acknowledgement (at least once: Faust's `Table._on_changelog_sent`), so a worker that
  keeps its local RocksDB restores only what came after;
* **nothing committed early**: the input offsets of a batch are committed only after the
  `OutputProducer` was flushed (`stream_apps.output.OutputProducer.guard_commits`), so
  after the changelog records of the batch's states are on the broker; a changelog
  record the broker refuses stops the worker uncommitted, as a refused output does
  (no dead letter: it has no `source`).

Deletions (never made by onewindow's tables) and tables without a producer set
(`use`) go through Faust's own path.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.types import TP

from stream_apps.output import OutputProducer

__all__ = ["ChangelogTable", "new_table"]


class ChangelogTable(faust.Table):
    """A bytes-keyed, bytes-valued Faust table whose changelog records go through an
    `OutputProducer` (module docstring)."""

    producer: OutputProducer | None = None
    _topic: str | None = None

    def _name_topic(self) -> str:
        self._topic = self.changelog_topic_name
        return self._topic

    def use(self, producer: OutputProducer) -> None:
        """Send this table's changelog records through ``producer`` from now on."""
        self.producer = producer

    def on_key_set(self, key: Any, value: Any) -> None:
        producer = self.producer
        if producer is None or not isinstance(key, bytes) or not isinstance(value, bytes):
            super().on_key_set(key, value)
            return
        partition = self.partition_for_key(key)
        assert partition is not None  # a table partitioned by its source topics
        tp = TP(self._topic or self._name_topic(), partition)
        store = self.data

        def delivered(offset: int) -> None:
            store.set_persisted_offset(tp, offset)

        producer.send(tp.topic, key, value, partition=partition, delivered=delivered)
        self._sensor_on_set(self, key, value)


def new_table(app: faust.App, name: str, producer: OutputProducer, **kwargs: Any
              ) -> ChangelogTable:
    """``app.Table(name, **kwargs)``, a `ChangelogTable` sending its changelog through
    ``producer``."""
    table = ChangelogTable(app, name=name, beacon=app.tables.beacon, **kwargs)
    table.use(producer)
    app.tables.add(table)
    return table
