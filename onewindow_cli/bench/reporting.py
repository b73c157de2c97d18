"""What a benchmark reports beside its numbers: the machine's load average (other work
on a shared 2-core machine shows there) and a cProfile summary of a run."""

from __future__ import annotations

import io
import pstats
from pathlib import Path


def loadavg() -> list[str]:
    """The 1, 5 and 15-minute load averages as `/proc/loadavg` gives them ([] elsewhere)."""
    try:
        return Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        return []


def profile_summary(profile: Path, n: int = 40) -> str:
    """The `n` costliest functions of a cProfile file, by cumulative then own time."""
    out = io.StringIO()
    stats = pstats.Stats(str(profile), stream=out)
    stats.sort_stats("cumulative").print_stats(n)
    stats.sort_stats("tottime").print_stats(n)
    return out.getvalue()
