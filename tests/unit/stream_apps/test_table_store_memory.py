"""What a worker's tables hold in memory stays within its budget however many cases it
holds (docs/benchmarks.md, "Where a held case's memory went"): a reopened partition keeps
the shared block cache, a full scan of a partition does not fill it, and the free pages
RocksDB's threads leave in glibc's heaps go back to the system. Each check runs in a
fresh interpreter: the table memory and the heaps are the whole process's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

_BUDGET = 24 * 1024 * 1024  # not rocksdict's own 8 MiB, so the two caches differ

_REOPEN = r"""
import json, random, sys
from faust.stores.rocksdb import RocksDBOptions
from stream_apps import table_store
from stream_apps.table_store import BoundedRocksDBOptions
memory = table_store.configure(int(sys.argv[2]))
options = BoundedRocksDBOptions(use_rocksdict=True)
opener = options.open if sys.argv[3] == "ours" else (
    lambda path: RocksDBOptions.open(options, path))  # Faust's own open, same options
path = sys.argv[1]
rnd = random.Random(7)
db = opener(path)
for i in range(2000):
    db.put(f"case-{i:05d}".encode(), rnd.randbytes(2000))
db.flush()
db.close()
db = opener(path)  # as a restarted worker reopens its partition
before = memory.usage_bytes()
found = sum(db.get(f"case-{i:05d}".encode()) is not None for i in range(2000))
print(json.dumps({"found": found,
                  "capacity": int(db.property_value("rocksdb.block-cache-capacity")),
                  "shared_cache_grew": memory.usage_bytes() - before}))
"""

_SCAN = r"""
import json, random, sys
from stream_apps import table_store
from stream_apps.faust_context import TableAccess
from stream_apps.records import InRecord
from stream_apps.table_store import BoundedRocksDBOptions
memory = table_store.configure(int(sys.argv[2]))
options = BoundedRocksDBOptions(use_rocksdict=True)
rnd = random.Random(7)
dbs = {}
for p in range(2):
    db = dbs[p] = options.open(f"{sys.argv[1]}/p{p}")
    for i in range(p, 3000, 2):
        db.put(f"case-{i:05d}".encode(), rnd.randbytes(2000))
    db.put(b"@calendar:%d" % p, b"{}")      # reserved: not a case
    db.put(b"__faust\0offset__", b"12")     # Faust's own bookkeeping
    db.flush()
for p, db in dbs.items():  # index and filter blocks in, and one data block each
    db.get(b"case-00000" if p == 0 else b"case-00001")
class Data: _dbs = dbs
class Table: data = Data()
access = TableAccess(Table())
before = memory.usage_bytes()
count = access.count_keys()
ids = list(access.case_ids(InRecord("t", 1, 0, None, b"", None)))
print(json.dumps({"count": count, "ids": len(ids), "odd": all(int(i[5:]) % 2 for i in ids),
                  "shared_cache_grew": memory.usage_bytes() - before}))
"""

_TRIM = r"""
import json, threading
from stream_apps import table_store
def anon_kib():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
kept = []
def churn():
    # 48 MiB in blocks glibc serves from this thread's own heap (under the mmap
    # threshold), then all but every 64th freed: the survivors keep the heap from
    # shrinking from its top, as RocksDB's live blocks do after a compaction
    blocks = [bytes([i % 256]) * 4000 for i in range(12000)]  # written: resident
    kept.extend(blocks[::64])
    del blocks[:]
thread = threading.Thread(target=churn)
thread.start()
thread.join()
freed = anon_kib()
released = table_store.release_free_memory()
print(json.dumps({"freed_kib": freed, "after_kib": anon_kib(), "released": released}))
"""


def _run(probe: str, *args: str) -> dict[str, int]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", probe, *args], env=environ,
                         capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_reopened_partition_reads_through_the_shared_cache(tmp_path: Path) -> None:
    got = _run(_REOPEN, str(tmp_path / "db"), str(_BUDGET), "ours")
    assert got["found"] == 2000
    assert got["capacity"] == _BUDGET
    assert got["shared_cache_grew"] > 1_000_000  # its blocks, in the budget


def test_faust_s_own_open_gives_a_reopened_partition_a_cache_of_its_own(
        tmp_path: Path) -> None:
    # the control: why BoundedRocksDBOptions.open exists (rocksdict reads an existing
    # database's column family options from disk, with a new 8 MiB cache)
    got = _run(_REOPEN, str(tmp_path / "db"), str(_BUDGET), "faust")
    assert got["found"] == 2000
    assert got["capacity"] == 8 * 1024 * 1024
    assert got["shared_cache_grew"] == 0


def test_a_full_scan_counts_every_case_without_filling_the_cache(tmp_path: Path) -> None:
    got = _run(_SCAN, str(tmp_path), str(_BUDGET))
    assert (got["count"], got["ids"], got["odd"]) == (3000, 1500, True)
    # about 6 MB of blocks were read; at most a block or two stayed
    assert got["shared_cache_grew"] < 100_000


def test_freed_heap_pages_of_a_thread_go_back_to_the_system() -> None:
    got = _run(_TRIM)
    assert got["released"] is True
    # most of the 48 MiB was still resident once freed, and is not after the call
    assert got["freed_kib"] - got["after_kib"] > 24 * 1024
