"""RocksDB tables with one memory budget per worker process.

Faust opens one RocksDB database per table partition, each with its own block cache and
memtables (`faust.stores.rocksdb.RocksDBOptions`): a worker's memory then grows with the
partitions it holds and with the state, up to gigabytes (docs/benchmarks.md, "Soak").
This store gives every database of the process one shared LRU block cache, and charges
their memtables to that cache through one write-buffer manager, so RocksDB's memory of a
worker stays within ``ONEWINDOW_TABLE_MEMORY_MIB`` however many partitions it is assigned.
It is the bounded-memory recipe of Kafka Streams (its "RocksDB: bounded memory" config:
a shared ``LRUCache``, a ``WriteBufferManager`` on that cache, index and filter blocks in
the cache), built with rocksdict's bindings, which Faust uses.

The tables use it through the store URL ``onewindow-rocksdb://`` (`STORE_URL`): the
alias is registered in Faust's store registry when this module is imported.

`configure` also fixes glibc's mmap threshold (`return_freed_blocks`): RocksDB's memtable
blocks, freed after each flush, otherwise stay in the heap as free holes and the
worker's resident memory creeps up by them (docs/benchmarks.md, "What still grew"); and
the workers give the free pages of glibc's heaps back every 15 s (`release_free_memory`).

A reopened database keeps the shared cache (`BoundedRocksDBOptions.open`), and full scans
of a partition read past the cache (`scan_options`): before both, a restarted worker
held up to 8 MiB of blocks per partition outside the budget (docs/benchmarks.md, "Where
a held case's memory went").
"""

from __future__ import annotations

import ctypes
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rocksdict
from faust import stores
from faust.stores.rocksdb import RocksDBOptions
from faust.stores.rocksdb import Store as RocksDBStore
from prometheus_client.core import CollectorRegistry, GaugeMetricFamily

#: The store URL of onewindow's tables (Faust's ``store`` setting).
STORE_URL = "onewindow-rocksdb://"

#: Share of the budget the memtables may take (the rest is block cache: data, index and
#: filter blocks). Kafka Streams' example takes a similar share.
MEMTABLE_SHARE = 0.25

#: Per-database memtable size and count. A memtable is flushed when it is full or when
#: the write-buffer manager's share of the budget is reached, whichever comes first.
WRITE_BUFFER_SIZE = 2 * 1024 * 1024
MAX_WRITE_BUFFER_NUMBER = 2

#: Seconds between two `release_free_memory` calls of a worker.
RELEASE_INTERVAL_SECONDS = 15.0

#: RocksDB's name of the column family every Faust table partition uses.
DEFAULT_COLUMN_FAMILY = "default"

#: glibc's ``M_MMAP_THRESHOLD`` (malloc.h) and the threshold set: allocations of this size
#: and more are mmapped, and unmapped when freed. 128 KiB is glibc's own starting value;
#: fixing it stops glibc from raising it after each large free (its dynamic threshold).
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 128 * 1024


def return_freed_blocks() -> bool:
    """Fix glibc's mmap threshold at ``MMAP_THRESHOLD_BYTES`` so that large blocks freed
    by RocksDB (memtables after a flush) go back to the system instead of staying in the
    heap. Returns True if set; False when the operator set ``MALLOC_MMAP_THRESHOLD_``
    (glibc's own tunable wins) or the C library has no ``mallopt`` (not glibc)."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))


def release_free_memory() -> bool:
    """Give the free pages of every glibc heap back to the system (``malloc_trim(0)``):
    RocksDB's flush and compaction threads allocate from heaps of their own, and what
    they free stays resident there, below memory still in use, until they need it again
    (some 25 MiB after a table's restore: docs/benchmarks.md, "Where a held case's memory
    went"). Milliseconds; the worker calls it off its event loop every
    ``RELEASE_INTERVAL_SECONDS`` (`stream_apps.faust_base`). Returns True if memory was
    returned, False if none was or the C library has no ``malloc_trim`` (not glibc)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return False
    trim.argtypes = (ctypes.c_size_t,)
    return bool(trim(0))


@dataclass(frozen=True)
class TableMemory:
    """The process's shared RocksDB memory: the block cache every table partition uses
    and the write-buffer manager charging their memtables to it. ``budget_bytes``: the
    cache's capacity (bytes, > 0); memtables take at most ``MEMTABLE_SHARE`` of it."""

    budget_bytes: int
    cache: Any  # rocksdict.Cache
    write_buffers: Any  # rocksdict.WriteBufferManager

    def usage_bytes(self) -> int:
        """Bytes held in the shared cache now (data, index and filter blocks, and the
        memtables' reservations)."""
        return int(self.cache.get_usage())

    def memtable_bytes(self) -> int:
        """Bytes of memtables the write-buffer manager counts now."""
        return int(self.write_buffers.get_usage())


_lock = threading.Lock()
_memory: TableMemory | None = None


def configure(budget_bytes: int) -> TableMemory:
    """Create the process's shared table memory with ``budget_bytes`` (> 0); call it once,
    before the tables open (the worker's composition root does). A second call with the
    same budget returns the same memory; another budget raises ``ValueError``: databases
    already open keep the cache they were opened with. Also `return_freed_blocks`."""
    global _memory
    if budget_bytes <= 0:
        raise ValueError(f"table memory budget must be positive, got {budget_bytes}")
    with _lock:
        if _memory is not None:
            if _memory.budget_bytes != budget_bytes:
                raise ValueError(f"table memory already configured with "
                                 f"{_memory.budget_bytes} bytes, not {budget_bytes}")
            return _memory
        return_freed_blocks()
        cache = rocksdict.Cache(budget_bytes)
        manager = rocksdict.WriteBufferManager.new_write_buffer_manager_with_cache(
            int(budget_bytes * MEMTABLE_SHARE), False, cache)
        _memory = TableMemory(budget_bytes, cache, manager)
        return _memory


def table_memory() -> TableMemory | None:
    """The process's shared table memory, None before `configure`."""
    return _memory


class BoundedRocksDBOptions(RocksDBOptions):
    """Faust's RocksDB options with the block cache and memtables of `table_memory`
    instead of a cache and memtables of each database's own."""

    def as_options(self) -> Any:
        memory = _memory
        if memory is None or not self.use_rocksdict:
            raise RuntimeError("onewindow tables need stream_apps.table_store.configure() "
                               "before they open, and the rocksdict bindings")
        options = rocksdict.Options(raw_mode=True)  # Faust stores raw bytes
        options.create_if_missing(True)
        options.set_max_open_files(self.max_open_files)
        options.set_write_buffer_size(WRITE_BUFFER_SIZE)
        options.set_max_write_buffer_number(MAX_WRITE_BUFFER_NUMBER)
        options.set_target_file_size_base(self.target_file_size_base)
        options.set_write_buffer_manager(memory.write_buffers)
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, True)
        table.set_block_cache(memory.cache)
        # index and filter blocks count against the budget too (else they sit outside
        # it, one set per SST file); those of level 0 stay pinned, as Kafka Streams does
        table.set_cache_index_and_filter_blocks(True)
        table.set_pin_l0_filter_and_index_blocks_in_cache(True)
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(table)
        return options

    def open(self, path: Path, *, read_only: bool = False) -> Any:
        """Open (or create) the database at ``path`` with `as_options` for the database
        *and* its column family. Faust's `RocksDBOptions.open` passes the options alone,
        and rocksdict (`Rdict.__new__`, src/rdict.rs) then opens an existing database's
        column family with the options of its OPTIONS file, given a new 8 MiB block
        cache: every reopened partition (a restart) had a cache of its own outside the
        budget (docs/benchmarks.md, "Where a held case's memory went"). ``read_only`` is
        ignored, as by Faust with rocksdict."""
        options = self.as_options()
        access = (rocksdict.AccessType.read_write() if self.ttl is None
                  else rocksdict.AccessType.with_ttl(self.ttl))
        db = rocksdict.Rdict(str(path), options=options,
                             column_families={DEFAULT_COLUMN_FAMILY: options},
                             access_type=access)
        db.set_read_options(rocksdict.ReadOptions())  # as Faust's open
        return db


def scan_options() -> Any:
    """Read options of a full scan of a table partition (`rocksdict.ReadOptions`): its
    blocks are not put into the block cache, so a scan neither evicts the cases being
    worked on nor keeps the whole partition's blocks in memory."""
    options = rocksdict.ReadOptions()
    options.fill_cache(False)
    return options


class BoundedRocksDBStore(RocksDBStore):
    """Faust's RocksDB table store, opening its databases with `BoundedRocksDBOptions`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        previous = self.rocksdb_options
        self.rocksdb_options = BoundedRocksDBOptions(
            max_open_files=previous.max_open_files,
            target_file_size_base=previous.target_file_size_base,
            bloom_filter_size=previous.bloom_filter_size,
            use_rocksdict=previous.use_rocksdict, ttl=previous.ttl)


class TableMemoryCollector:
    """Prometheus collector of `table_memory`, read at each scrape:
    ``onewindow_table_memory_bytes{part="cache"}`` (everything the shared cache holds,
    memtables included), ``{part="memtables"}`` (the memtables alone) and
    ``onewindow_table_memory_budget_bytes``. Nothing before `configure`."""

    def collect(self) -> Any:
        memory = _memory
        if memory is None:
            return
        used = GaugeMetricFamily("onewindow_table_memory_bytes",
                                 "RocksDB memory of this worker's tables, all partitions "
                                 "(cache: the shared block cache with the memtables "
                                 "charged to it; memtables: those alone)", labels=["part"])
        used.add_metric(["cache"], memory.usage_bytes())
        used.add_metric(["memtables"], memory.memtable_bytes())
        yield used
        yield GaugeMetricFamily("onewindow_table_memory_budget_bytes",
                                "ONEWINDOW_TABLE_MEMORY_MIB in bytes: the shared cache's "
                                "capacity", value=memory.budget_bytes)


def register_metrics(registry: CollectorRegistry) -> None:
    """Add `TableMemoryCollector` to a worker's metrics ``registry``."""
    registry.register(TableMemoryCollector())


stores.STORES.aliases.setdefault("onewindow-rocksdb",
                                 f"{__name__}:{BoundedRocksDBStore.__name__}")
