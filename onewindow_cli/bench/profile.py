"""py-spy profiles of the bench's Faust processes (`onewindow bench --profile DIR`), and
where their time goes, by part.

`attach` samples a running process with ``py-spy record --pid`` (250 Hz, one line per
distinct stack in py-spy's "raw" format, threads apart, the process never paused) until
`stop`, so a profile covers only the window measured (not the start-up, the imports and
the sign-in of a process that runs for seconds). `summarise` reads such a file back: the share of
the samples (CPU time of Python threads: py-spy leaves idle samples out) per thread, per
part (`PARTS`) and per function (self time). py-spy is a development tool, found next to
the interpreter or on PATH; ``--profile`` without it is an error, the bench without
``--profile`` never needs it.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import IO, Any

#: Sampling rate (samples a second).
RATE = 250

#: The parts a sample is charged to. A sample's stack is read from the innermost frame
#: outwards and the first frame that matches a part charges it (so the step's time in
#: fastavro is the step's, a table write's time in RocksDB the store's); a fragment is a
#: piece of the frame's file path, or ``path::name`` to match only functions whose name
#: contains ``name``. A stack with no such frame is charged to the first part of
#: `GENERIC` it has a frame of, else to "other".
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("the pure step (CaseProcessor)", ("stream_apps/case_processor.py",
                                       "stream_apps/calendar_checks.py")),
    ("output sends (confluent-kafka)", ("stream_apps/output.py",)),
    ("table: RocksDB", ("faust/stores/", "stream_apps/table_store.py")),
    ("table: Faust table and changelog sends", ("faust/tables/", "faust/transport/producer.py",
                                                "aiokafka/producer/")),
    ("metrics", ("prometheus_client/", "stream_apps/metrics.py")),
    ("the agent's shell", ("stream_apps/faust_context.py", "stream_apps/app.py::fold_cases",
                           "onewindow_cli/bench/faust_noop.py::do_nothing")),
    ("commits", ("faust/transport/consumer.py::commit", "aiokafka/consumer/group_coordinator.py",
                 "faust/transport/drivers/aiokafka.py::commit")),
    ("aiokafka consumer (fetch, decode records)", ("aiokafka/", "faust/transport/drivers/")),
    ("Faust's stream, channels, acks", ("faust/streams.py", "faust/channels.py",
                                        "faust/topics.py", "faust/events.py", "faust/agents/",
                                        "faust/transport/conductor.py",
                                        "faust/transport/consumer.py", "faust/_cython/",
                                        "mode/utils/queues.py")),
)
#: What a stack without a frame of `PARTS` is charged to.
GENERIC: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("event loop, threads and mode", ("asyncio/", "mode/", "selectors.py", "threading.py")),
)

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*):(?P<line>\d+)\)$")


def py_spy() -> str:
    """The py-spy executable (next to this interpreter, else on PATH)."""
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise RuntimeError("--profile needs py-spy (pip install py-spy)")
    return found


def attach(pid: int, out: Path, *, log: IO[bytes], rate: int = RATE
           ) -> subprocess.Popen[bytes]:
    """Start sampling the running process ``pid`` (``py-spy record --pid``) into ``out``;
    `stop` ends it and writes the file."""
    return subprocess.Popen([py_spy(), "record", "--pid", str(pid), "--rate", str(rate),
                             "--format", "raw", "--threads", "--nonblocking", "--subprocesses",
                             "--output", str(out)], stdout=log, stderr=subprocess.STDOUT)


def stop(spy: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """End a sampling started by `attach` (as Ctrl-C does) and wait until py-spy has
    written its file."""
    if spy.poll() is None:
        spy.send_signal(signal.SIGINT)
    try:
        spy.wait(timeout)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait(10)


def _frames(stack: str) -> tuple[str, list[tuple[str, str]]]:
    """A raw stack's thread (``main``/``child`` process, then the thread's name) and
    frames (function, file), outermost first."""
    processes, thread, frames = 0, "", []
    for text in stack.split(";"):
        if text.startswith("process "):
            processes += 1
        elif text.startswith("thread (") and not thread:
            thread = re.sub(r"[-_]?\d+$", "", text.split(": ", 1)[-1].strip()) or "?"
        else:
            m = _FRAME.match(text)
            if m is not None:
                frames.append((m["func"], m["file"]))
    where = "child" if processes > 1 else "main"
    return f"{where}/{thread or '?'}", frames


def _matches(fragment: str, func: str, file: str) -> bool:
    where, _, name = fragment.partition("::")
    return where in file and name in func


def _part(frames: list[tuple[str, str]]) -> str:
    for table in (PARTS, GENERIC):
        for func, file in reversed(frames):
            for name, fragments in table:
                if any(_matches(f, func, file) for f in fragments):
                    return name
    return "other" if frames else "(no Python frame)"


def summarise(path: Path, top: int = 15) -> dict[str, Any]:
    """The profile at ``path`` by part: ``samples``, ``threads`` (name -> share),
    ``parts`` (part -> share of all samples, and per thread ``parts_by_thread``) and
    ``top_self`` (``[function (file), share]``, the functions where samples ended)."""
    threads: Counter[str] = Counter()
    parts: Counter[str] = Counter()
    by_thread: dict[str, Counter[str]] = {}
    leaves: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        thread, frames = _frames(stack)
        part = _part(frames)
        total += n
        threads[thread] += n
        parts[part] += n
        by_thread.setdefault(thread, Counter())[part] += n
        if frames:
            func, file = frames[-1]
            leaves[f"{func} ({_short(file)})"] += n

    def share(c: Counter[str]) -> dict[str, float]:
        return {k: round(v / total, 4) for k, v in c.most_common()} if total else {}

    return {"samples": total, "rate": RATE, "threads": share(threads), "parts": share(parts),
            "parts_by_thread": {t: share(c) for t, c in by_thread.items()},
            "top_self": [[k, round(v / total, 4)] for k, v in leaves.most_common(top)]
            if total else []}


_ROOT = f"{Path(__file__).resolve().parents[2]}/"
_LIB = re.compile(r"^.*?(site-packages/|lib/python3\.\d+/)")


def _short(file: str) -> str:
    """A frame's file without the site-packages, standard library or checkout prefix."""
    return _LIB.sub("", file.removeprefix(_ROOT))
