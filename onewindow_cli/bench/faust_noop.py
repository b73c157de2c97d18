"""The do-nothing Faust agent of `onewindow bench`: the case-state worker's framework
with no work in it, the ceiling the worker is measured against (issue 15, point 2).

It is built as the worker is (`stream_apps.app.create_app`): the same app settings
(`stream_apps.faust_base.new_app`: the `onewindow://` read_committed transport, the
`svc-stream` sign-in, commit interval, session timeout, stream buffer, flow control,
supervisor, web server), the same source (every department topic and the calendar-check
topic, raw bytes), the same agent shape (`stream_apps.batching.take_batches` of
`BATCH_MAX` within `BATCH_WITHIN`, concurrency 1), and Faust acks and commits what it takes. It has no
table, no processing and no output: for each batch it only counts the events. Its own
app id (consumer group), given by the bench, which grants `svc-stream` that group and its
internal topics as provisioning grants the worker's (`onewindow_cli.bench.case_state`).

Run by the bench as ``python -m onewindow_cli.bench.faust_noop --app-id ID --events N
--out FILE``:
once it has taken N events it writes ``{"events", "first", "last"}`` to FILE (Unix
seconds at the end of the first and of the N-th event's batch: the worker's throughput
is timed the same way, first to last output record) and runs on until SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import faust

from onewindow.cli_options import add_common, positive_int, settings_from
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.logs import configure_logging
from onewindow.topics import Topics
from stream_apps.app import BATCH_MAX, BATCH_WITHIN
from stream_apps.batching import take_batches
from stream_apps.faust_base import new_app, run


def create_app(settings: Settings, *, app_id: str, expect: int, out: Path,
               worker_name: str = "bench-noop") -> faust.App:
    """The do-nothing agent's app under ``app_id`` (its consumer group, and the prefix of
    its internal topics); it writes ``out`` once it has taken ``expect`` events (> 0)."""
    topics = Topics(settings.topic_prefix)
    registry = load_registry(settings.departments_file)
    app = new_app(settings, app_id=app_id, worker_name=worker_name,
                  batch_max=BATCH_MAX, web_port=settings.worker_web_port)
    source = app.topic(*topics.inputs(registry.codes), topics.calendar_checks,
                       key_type=bytes, value_type=bytes, key_serializer="raw",
                       value_serializer="raw")
    seen = 0
    first: float | None = None

    @app.agent(source, concurrency=1)
    async def do_nothing(stream: faust.StreamT[bytes]) -> None:
        nonlocal seen, first
        async for batch in take_batches(stream, BATCH_MAX, BATCH_WITHIN):
            seen += len(batch)
            now = time.time()
            if first is None:
                first = now
                out.with_suffix(".first").touch()  # the bench may start its profiler
            if seen >= expect and not out.exists():
                partial = out.with_suffix(".part")
                partial.write_text(json.dumps({"events": seen, "first": first, "last": now}))
                os.replace(partial, out)

    return app


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m onewindow_cli.bench.faust_noop",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--app-id", dest="app_id", required=True,
                   help="the agent's Faust app id (consumer group)")
    p.add_argument("--events", type=positive_int, required=True,
                   help="write --out once this many events were taken")
    p.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    p.add_argument("--web-port", dest="web_port", type=positive_int, default=None)
    p.add_argument("--name", default="bench-noop", help="the data directory's name")
    add_common(p)
    args = p.parse_args(argv)
    s = settings_from(args)
    if args.web_port:
        s = s.model_copy(update={"worker_web_port": args.web_port})
    configure_logging(s)
    run(create_app(s, app_id=args.app_id, expect=args.events, out=args.out,
                   worker_name=args.name), s, None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
