"""How the Faust shells hand records to the processors and touch their tables.

Faust's RocksDB store and its changelog pick the partition of a table read or write from
the *current event*; inside a `take_events` batch that is the batch's last event, so
each read and write of a batch must name its own event first (`use_event`). `records`
and `TableAccess` are the one place where that happens for both apps.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from faust.streams import _current_event  # noqa: PLC2701 - no public setter exists

from stream_apps.records import InRecord
from stream_apps.table_store import scan_options


def use_event(event: Any) -> None:
    """Make `event` (a Faust event of the stream being processed) the current event."""
    _current_event.set(weakref.ref(event))


def records(batch: Iterable[Any]) -> list[InRecord]:
    """A `take_events` batch as the processors' `InRecord`s (the event kept as `ref`)."""
    return [InRecord(e.message.topic, e.message.partition, e.message.offset, e.message.key,
                     e.message.value,
                     int(e.message.timestamp * 1000) if e.message.timestamp else None, e)
            for e in batch]


class TableAccess:
    """Reads and writes of a bytes-keyed, bytes-valued Faust table, each under the event
    of the record it belongs to."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def load(self, key: str, rec: InRecord) -> bytes | None:
        use_event(rec.ref)
        return self.table.get(key.encode("utf-8"))

    def store(self, changed: Mapping[str, tuple[bytes, InRecord]]) -> None:
        for key, (value, rec) in changed.items():
            use_event(rec.ref)
            self.table[key.encode("utf-8")] = value

    def count_keys(self) -> int:
        """The keys in this worker's open partitions, read straight from RocksDB (Faust's
        own offset bookkeeping keys and the reserved ``@`` keys excluded). O(keys): run it
        off the event loop (`asyncio.to_thread`); RocksDB reads are safe beside the loop's
        writes. The scan's blocks stay out of the block cache (`table_store.scan_options`):
        a scan every 15 s kept every block of the table in memory (docs/benchmarks.md,
        "Where a held case's memory went")."""
        dbs = list(getattr(self.table.data, "_dbs", {}).values())  # partition -> db
        return sum(1 for db in dbs for key in db.keys(read_opt=scan_options())
                   if not _reserved(key))

    def case_ids(self, rec: InRecord) -> Iterator[str]:
        """The case ids stored in the table partition of ``rec`` (a calendar check),
        lazily, straight from its RocksDB (`count_keys`)."""
        db = getattr(self.table.data, "_dbs", {}).get(rec.partition)
        if db is None:
            return
        for key in db.keys(read_opt=scan_options()):
            if not _reserved(key):
                yield key.decode("utf-8")


#: Faust's offset bookkeeping key in each partition's RocksDB (faust.stores.rocksdb).
_FAUST_OFFSET_KEY = b"__faust\0offset__"


def _reserved(key: bytes) -> bool:
    """Faust's offset bookkeeping key and onewindow's reserved keys (``@calendar:<p>``:
    a case_id never starts with ``@``, stream_apps.calendar_checks)."""
    return key == _FAUST_OFFSET_KEY or key.startswith(b"@")


def still_current(app: Any, rec: InRecord) -> bool:
    """Whether ``rec``'s partition is still this worker's, as when it was consumed: no
    rebalance began since (its generation is the app's, and the flow is on)."""
    message = getattr(rec.ref, "message", None)
    return (message is not None and app.flow_control.is_active()
            and message.generation_id == app.consumer_generation_id)
