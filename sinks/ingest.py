"""One consumed output-topic record into a :class:`~sinks.rows.Batch`.

Shared by the live sink and ``onewindow rebuild``, so both write the same rows with the
same code. A record that cannot be read (undecodable bytes, an unexpected record type, a
tombstone) is counted and skipped: its offset still advances, so one bad record can never
stop the read model. It is never logged with its payload.
"""

from __future__ import annotations

import logging
from typing import Any

from onewindow.codec import Codec
from onewindow.topics import Topics
from sinks.metrics import SinkMetrics
from sinks.rows import Batch, RowMaker

__all__ = ["Ingestor", "SHORT"]

log = logging.getLogger(__name__)

#: short metric label of each output topic
SHORT = {"CaseState": "case-state", "CaseActivity": "case-activity",
         "MaterialLink": "material-links", "DeadLetter": "dead-letters"}


class Ingestor:
    def __init__(self, topics: Topics, codec: Codec, rows: RowMaker,
                 metrics: SinkMetrics | None = None) -> None:
        self.codec = codec
        self.rows = rows
        self.metrics = metrics
        self._counters: dict[tuple[str, str], Any] = {}
        self.kind = {topics.case_state: "CaseState", topics.case_activity: "CaseActivity",
                     topics.material_links: "MaterialLink", topics.dead_letters: "DeadLetter"}

    @property
    def topic_names(self) -> list[str]:
        return list(self.kind)

    def _count(self, kind: str, result: str) -> None:
        if self.metrics is not None:
            child = self._counters.get((kind, result))
            if child is None:  # labels() takes a lock and builds a key: once per pair
                child = self._counters[(kind, result)] = \
                    self.metrics.records.labels(SHORT[kind], result)
            child.inc()

    def add(self, batch: Batch, topic: str, partition: int, offset: int,
            value: bytes | None, timestamp_ms: int | None = None) -> str:
        """Add one record to ``batch``; returns what happened to it."""
        kind = self.kind[topic]
        batch.consumed(topic, partition, offset)
        if value is None:
            self._count(kind, "tombstone")
            return "tombstone"
        try:
            rec = self.codec.decode_record(value)
        except Exception:  # noqa: BLE001 - any unreadable record is skipped, counted
            log.warning("skipping an undecodable record at %s[%d]@%d", topic, partition, offset)
            self._count(kind, "undecodable")
            return "undecodable"
        if rec.get("type") != kind:
            log.warning("skipping a %s record on %s[%d]@%d", rec.get("type"), topic, partition,
                        offset)
            self._count(kind, "wrong_type")
            return "wrong_type"
        try:
            self._add(batch, kind, rec)
        except Exception:  # noqa: BLE001 - a record the row mapping rejects must not block
            log.exception("skipping an unmappable %s record at %s[%d]@%d", kind, topic,
                          partition, offset)
            self._count(kind, "unmappable")
            return "unmappable"
        self._count(kind, "accepted")
        return "accepted"

    def _add(self, batch: Batch, kind: str, rec: dict[str, Any]) -> None:
        label = SHORT[kind]
        if kind == "CaseState":
            row, tasks = self.rows.case_rows(rec)
            batch.add_case(row, tasks)
            batch.stamps.append((label, rec.get("source_timestamp"), None, rec["case_id"]))
        elif kind == "CaseActivity":
            entry, material = self.rows.activity_rows(rec)
            batch.add_timeline(entry)
            if material is not None:
                batch.add_material(material)
            batch.stamps.append((label, rec.get("source_timestamp"), rec.get("occurred_at"), None))
        elif kind == "MaterialLink":
            batch.add_link(self.rows.link_row(rec))
            batch.stamps.append((label, rec.get("source_timestamp"), None, None))
        else:
            batch.add_dead_letter(self.rows.dead_letter_row(rec))
