"""Subcommands of the stream side: `onewindow worker`, `onewindow materials-worker`,
`onewindow recompute-deadlines`, `onewindow reprocess`, `onewindow copy-inputs`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

from onewindow.broker_wait import wait_for_broker, waiting_line
from onewindow.cli_options import (
    add_common,
    directory_problem,
    log_level,
    positive_float,
    positive_int,
    settings_from,
    tcp_port,
    topic_prefix,
    wait_seconds,
    writable_dir,
    writable_file,
)
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.errors import ConfigError
from onewindow.logs import LIBRDKAFKA_LOGGER, configure_logging
from onewindow.security.id_key import resolve_id_hash_key
from onewindow.security.kafka_auth import STREAM, producer_config
from onewindow.stopping import stop_on_signals
from onewindow.topics import (
    Topics,
    missing_topics_problem,
    partition_count_problem,
    partition_counts,
    prefix_problem,
)

log = logging.getLogger(__name__)


def _case_state_app(settings: Settings, name: str) -> Any:
    # Faust and its app (~0.6 s to import) load only for the worker commands, so the
    # other `onewindow` commands start quickly.
    from stream_apps.app import create_app  # noqa: PLC0415 - heavy, see above

    # the step in a process of its own (stream_apps.step_process): forked while the app is
    # built, before the worker starts any thread
    return create_app(settings, worker_name=name, step_process=True)


def _materials_app(settings: Settings, name: str) -> Any:
    from stream_apps.materials_app import create_app  # noqa: PLC0415 - Faust, see _case_state_app

    return create_app(settings, worker_name=name)


# The Faust workers: command -> (app factory, settings field of its web port, default
# worker name, help).
WORKERS: dict[str, tuple[Callable[[Settings, str], Any], str, str, str]] = {
    "worker": (_case_state_app, "worker_web_port", "worker",
               "run the case-state stream worker (Faust)"),
    "materials-worker": (_materials_app, "materials_web_port", "materials",
                         "run the materials stream worker (duplicate-material detection)"),
}


def cmd_worker(args: argparse.Namespace) -> int:
    """A Faust stream worker in the foreground until SIGTERM/SIGINT."""
    from stream_apps.faust_base import run  # noqa: PLC0415 - Faust, see _case_state_app

    factory, port_field, _name, _help = WORKERS[args.command]
    s = settings_from(args)
    if args.web_port is not None:
        s = s.model_copy(update={port_field: args.web_port})
    configure_logging(s, level=args.loglevel)
    app = factory(s, args.name)
    if not broker_answers(s):
        return 0  # SIGTERM/SIGINT while waiting for the broker: nothing to stop
    check_partition_count(s)
    run(app, s, args.loglevel)
    return 0


def check_partition_count(settings: Settings) -> None:
    """Refuse (ConfigError: one line, exit 2) to start a worker on a generation whose
    output topics `svc-stream` cannot see (not provisioned, or another prefix:
    `onewindow.topics.missing_topics_problem`), or whose ONEWINDOW_PARTITIONS differs from
    its topics' partition count (`onewindow.topics.partition_count_problem`), both read
    from the cluster as `svc-stream`. A cluster that does not answer within 15 s is left
    to Faust's own start."""
    from confluent_kafka import KafkaException  # noqa: PLC0415 - as the worker's runtime
    from confluent_kafka.admin import AdminClient  # noqa: PLC0415

    try:
        md = AdminClient(producer_config(settings, STREAM)).list_topics(timeout=15)
    except KafkaException:
        return
    have = partition_counts(md)
    topics = Topics(settings.topic_prefix)
    problem = missing_topics_problem(have, topics, STREAM) or partition_count_problem(
        have, topics, load_registry(settings.departments_file).codes, settings.partitions)
    if problem is not None:
        raise ConfigError(problem)


def broker_answers(settings: Settings) -> bool:
    """Wait until the broker answers a metadata request as `svc-stream`, retrying with
    backoff (1 s doubling to 30 s, one log line per attempt); False when SIGTERM or
    SIGINT comes first. Faust's own start does not wait: on a broker that is not up, its
    aiokafka client gives up ("Unable to bootstrap") and the worker exits 1."""
    with stop_on_signals() as stop:
        return wait_for_broker(producer_config(settings, STREAM), stop=stop, say=log.warning)


def cmd_recompute_deadlines(args: argparse.Namespace) -> int:
    """Check the calendar override file, then ask the case-state workers to check every
    partition against it (stream_apps.calendar_checks): one record per partition of the
    calendar-check topic, signed in as the stream principal. Exit 2 for a bad file, 1 when
    the broker does not acknowledge every record within ``--timeout`` seconds."""
    # the calendar and the Kafka client load only for this command, as for the workers
    from onewindow.calendar_source import DEFAULT_OVERRIDE_FILE, describe  # noqa: PLC0415
    from stream_apps.calendar_checks import request_checks  # noqa: PLC0415

    s = settings_from(args)
    snapshot, topic = request_checks(s, timeout=args.timeout)
    print(f"{describe(snapshot)} from {s.calendar_override_file or DEFAULT_OVERRIDE_FILE}")  # noqa: T201
    print(f"asked the case-state workers to check the {s.partitions} partitions of {topic}: "  # noqa: T201
          "each reloads its override file if it changed, then re-publishes the deadline of "
          "every open case the calendar moves (worker log 'calendar check'; metrics "
          "onewindow_calendar_checks_total, onewindow_deadlines_republished_total). "
          "Restart the counter app so that its SLA status uses the new calendar too.")
    return 0


def cmd_reprocess(args: argparse.Namespace) -> int:
    """Re-derive a generation from the input topics (stream_apps.reprocess): 0 at the end
    offsets, 130 when stopped before them (what was read is committed: run it again to
    continue); one line and 2 for what the operator can fix, 1 for the broker."""
    from stream_apps.reprocess import reprocess  # noqa: PLC0415 - Faust's Sensor, see above

    s = settings_from(args)
    _check_generation(args, s)  # one line and exit 2 before the broker is asked
    configure_logging(s, level=args.loglevel or "WARNING")
    if args.loglevel is None:
        # a one-shot command on the terminal: librdkafka's own lines only with --loglevel
        logging.getLogger(LIBRDKAFKA_LOGGER).propagate = False
    resolve_id_hash_key(s)  # no key: one line and exit 2 before anything is read
    with stop_on_signals() as stop:
        report = reprocess(s, target_prefix=args.to_prefix, jobs=args.jobs,
                           batch_max=args.batch_size, wait=args.wait,
                           say=waiting_line("reprocess", args.wait, s.kafka_bootstrap),
                           out=sys.stdout, stop=stop, state_dir=args.state_dir,
                           progress_every=args.progress)
    for line in summary(report):
        print(line)  # noqa: T201
    if args.report is not None:
        args.report.write_text(json.dumps(dataclasses.asdict(report), indent=2) + "\n",
                               encoding="utf-8")
    return 130 if report.stopped else 0


def _check_generation(args: argparse.Namespace, s: Settings) -> None:
    """Raise `ConfigError` (exit 2) before anything starts when a topic name of the source
    or the target generation would not be one Kafka takes (its prefix with the registry's
    departments, `onewindow.topics.prefix_problem`), or when the default scratch directory
    cannot be made and written (``--state-dir`` and ``--report`` are checked as they are
    parsed: `writable_dir`, `writable_file`)."""
    codes = load_registry(s.departments_file).codes
    for where, prefix in (("the topic prefix (--topic-prefix, ONEWINDOW_TOPIC_PREFIX)",
                           s.topic_prefix), ("--to-prefix", args.to_prefix)):
        problem = None if prefix is None else prefix_problem(prefix, codes)
        if problem is not None:
            raise ConfigError(f"{where} {prefix!r} is not a valid topic prefix: {problem}")
    if args.state_dir is None:
        problem = directory_problem(s.data_dir / "reprocess")
        if problem is not None:
            raise ConfigError(f"the scratch state directory (<data dir>/reprocess; "
                              f"--state-dir DIR names another): {problem}")


def cmd_copy_inputs(args: argparse.Namespace) -> int:
    """Copy a generation's input topics into a new generation of as many partitions or
    more (stream_apps.copy_inputs): 0 when all is copied, 130 when stopped before (what
    was copied is noted: run it again to go on); one line and 2 for what the operator can
    fix, 1 for the broker. With ``--skip-to-end TOPIC`` it copies nothing: the copy's
    progress on each TOPIC moves to its end, one line per topic (0; 130 when stopped
    while waiting for the broker)."""
    from stream_apps.copy_inputs import copy_inputs  # noqa: PLC0415 - Kafka clients, see above
    from stream_apps.copy_inputs import summary as copy_summary  # noqa: PLC0415

    s = settings_from(args)
    configure_logging(s, level=args.loglevel or "WARNING")
    if args.loglevel is None:
        logging.getLogger(LIBRDKAFKA_LOGGER).propagate = False
    if args.skip_to_end:
        return _skip_to_end(args, s)
    with stop_on_signals() as stop:
        report = copy_inputs(s, target_prefix=args.to_prefix, batch_max=args.batch_size,
                             wait=args.wait,
                             say=waiting_line("copy-inputs", args.wait, s.kafka_bootstrap),
                             out=sys.stdout, stop=stop, progress_every=args.progress)
    for line in copy_summary(report):
        print(line)  # noqa: T201
    return 130 if report.stopped else 0


def _skip_to_end(args: argparse.Namespace, s: Settings) -> int:
    """`onewindow copy-inputs --skip-to-end TOPIC ...` (`cmd_copy_inputs`)."""
    from stream_apps.copy_inputs import skip_to_end, skipped_line  # noqa: PLC0415 - see above

    with stop_on_signals() as stop:
        skipped = skip_to_end(s, target_prefix=args.to_prefix, topics=args.skip_to_end,
                              wait=args.wait, stop=stop,
                              say=waiting_line("copy-inputs", args.wait, s.kafka_bootstrap))
    if skipped is None:
        print("copy-inputs: stopped while waiting for the broker; nothing skipped")  # noqa: T201
        return 130
    for one in skipped:
        print(f"copy-inputs: {skipped_line(one)}")  # noqa: T201
    return 0


def summary(report: Any) -> list[str]:
    """The lines `onewindow reprocess` ends with (a `ReprocessReport`)."""
    if report.plan is None:
        return ["reprocess: stopped while waiting for the broker"]
    n, secs = report.input_records, report.seconds
    lines = [f"{'stopped after' if report.stopped else 'reprocessed'} {n:,} input records "
             f"in {secs:.1f}s ({n / max(secs, 1e-9):,.0f} records/s) into generation "
             f"{report.plan.target_prefix!r}"
             + ("; run it again to continue from there" if report.stopped else "")]
    for stage in report.stages:
        counts = ", ".join(f"{k} {v:,}" for k, v in sorted(stage.counts.items())) or "none"
        outs = ", ".join(f"{k} {v:,}" for k, v in sorted(stage.outputs.items())) or "none"
        lines.append(f"  {stage.name:<6} {stage.records:>10,} records {stage.seconds:>7.1f}s "
                     f"({stage.processes} process(es), {stage.restored:,} state records "
                     f"restored): {counts}; wrote {outs}")
    return lines


def register(sub: Any) -> None:
    """Add the worker subcommands to `sub` (an argparse subparsers action)."""
    for command, (_factory, _port, name, help_text) in WORKERS.items():
        p = sub.add_parser(command, help=help_text)
        p.add_argument("--name", default=name, help="worker name: its RocksDB directory")
        p.add_argument("--web-port", type=tcp_port, help="port of its /metrics page")
        p.add_argument("--loglevel", type=log_level, default=None,
                       help="log level (ONEWINDOW_LOG_LEVEL)")
        add_common(p)
        p.set_defaults(func=cmd_worker)
    p = sub.add_parser(
        "recompute-deadlines",
        help="after changing the calendar override file: the case-state workers reload it "
             "and re-publish the deadline of every open case it moves")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="how long to wait for the broker's acknowledgements (default 30); "
                        "then exit status 1")
    add_common(p)
    p.set_defaults(func=cmd_recompute_deadlines)

    p = sub.add_parser(
        "reprocess",
        help="re-derive case state, activity and material links from the input topics in "
             "batch, into a generation of topics (a rule, the calendar or the ID hash key "
             "changed, a new deployment, more partitions)")
    p.add_argument("--to-prefix", dest="to_prefix", type=topic_prefix, default=None,
                   metavar="PREFIX",
                   help="topic prefix of the generation written (default: the source's, "
                        "--topic-prefix); provisioned first, its workers stopped")
    p.add_argument("--jobs", type=positive_int, default=1,
                   help="processes, each reading a group of partitions (default 1; up to "
                        "one per core)")
    p.add_argument("--batch-size", dest="batch_size", type=positive_int, default=10_000,
                   help="records per batch (default 10000)")
    p.add_argument("--wait", type=wait_seconds, default=30.0, metavar="SECONDS",
                   help="how long to wait for the broker to answer (then exit status 1) and "
                        "for stopped workers to leave the target's groups (then 2); "
                        "default 30")
    p.add_argument("--progress", type=positive_float, default=10.0, metavar="SECONDS",
                   help="seconds between two progress lines (default 10)")
    p.add_argument("--state-dir", dest="state_dir", type=writable_dir, default=None,
                   help="directory of the processes' scratch state stores (default: "
                        "<data dir>/reprocess); each run's own is deleted at its end")
    p.add_argument("--report", type=writable_file, default=None, metavar="FILE",
                   help="also write what was done (records, seconds and counts per stage) "
                        "as JSON to FILE")
    p.add_argument("--loglevel", type=log_level, default=None)
    add_common(p)
    p.set_defaults(func=cmd_reprocess)

    p = sub.add_parser(
        "copy-inputs",
        help="copy the input topics of a generation (--topic-prefix) into a new one "
             "(--to-prefix) of as many partitions or more, each record on its key's "
             "partition there; run again to copy what came since (growing the partition "
             "count: docs/operations.md)")
    p.add_argument("--to-prefix", dest="to_prefix", type=topic_prefix, required=True,
                   metavar="PREFIX",
                   help="topic prefix of the generation written, provisioned first with its "
                        "partition count (ONEWINDOW_PARTITIONS)")
    p.add_argument("--batch-size", dest="batch_size", type=positive_int, default=5_000,
                   help="records per batch (default 5000)")
    p.add_argument("--wait", type=wait_seconds, default=30.0, metavar="SECONDS",
                   help="how long to wait for the broker to answer (default 30); then exit "
                        "status 1")
    p.add_argument("--progress", type=positive_float, default=10.0, metavar="SECONDS",
                   help="seconds between two progress lines (default 10)")
    p.add_argument("--skip-to-end", dest="skip_to_end", action="append", default=None,
                   metavar="TOPIC",
                   help="copy nothing: move the copy's progress on TOPIC, an input topic of "
                        "the source generation, to its end, so that its records there now "
                        "are never copied (a department's records sent to the source after "
                        "it moved, and sent again to the target: docs/operations.md, "
                        "growing the partition count, step 5); repeatable")
    p.add_argument("--loglevel", type=log_level, default=None)
    add_common(p)
    p.set_defaults(func=cmd_copy_inputs)
