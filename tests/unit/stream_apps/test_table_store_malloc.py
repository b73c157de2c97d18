"""The table memory fixes glibc's mmap threshold, so large blocks RocksDB frees go back to
the system (docs/benchmarks.md, "What still grew"): after a large block is freed, glibc
would otherwise raise its threshold and serve the next one from the heap. Each check runs
in a fresh interpreter: the setting is for the whole process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

_PROBE = r"""
import ctypes, json, sys
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks",
                "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
from stream_apps import table_store
if sys.argv[1] == "configure":
    table_store.configure(8 * 1024 * 1024)
first = bytearray(4 << 20)
del first                      # glibc raises a dynamic threshold past 4 MiB here
before = libc.mallinfo2().hblks
second = bytearray(4 << 20)    # mmapped again only if the threshold stayed fixed
print(json.dumps({"mmapped_again": libc.mallinfo2().hblks > before,
                  "set": table_store.return_freed_blocks()}))
"""


def _probe(mode: str, **env: str) -> dict[str, bool]:
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], env={**environ, **env},
                         capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_configured_table_memory_returns_large_freed_blocks_to_the_system() -> None:
    assert _probe("configure") == {"mmapped_again": True, "set": True}


def test_without_it_glibc_serves_the_next_large_block_from_the_heap() -> None:
    # the control: what the worker did before (the probe calls return_freed_blocks only
    # after the allocations, to report whether it would have set the threshold)
    assert _probe("plain")["mmapped_again"] is False


def test_the_operators_own_glibc_tunable_wins() -> None:
    got = _probe("configure", MALLOC_MMAP_THRESHOLD_="262144")
    assert got == {"mmapped_again": True, "set": False}
