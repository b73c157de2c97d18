"""Subcommands of the producer side: `onewindow produce`, `onewindow material`,
`onewindow scenario`, `onewindow simulate`."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from onewindow.cli_options import (
    MAX_BACKLOG_HOURS,
    MAX_COMPRESSION,
    add_common,
    at_most,
    non_negative_float,
    positive_float,
    positive_int,
    settings_from,
)
from onewindow.codec import get_codec
from onewindow.departments import load_registry
from onewindow.errors import OneWindowError
from onewindow.security.kafka_auth import department_principal, producer_config
from onewindow.stopping import stop_on_signals
from onewindow.topics import Topics
from onewindow.uscc_exceptions import load_uscc_exceptions
from producers.jsonl import produce_file
from producers.materials import material_event_from_file, parse_fields
from producers.publisher import Publisher
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from producers.simulator import SimulationConfig, simulate


def cmd_produce(args: argparse.Namespace) -> int:
    return produce_file(settings_from(args), Path(args.file), topic=args.topic,
                        validate=not args.no_validate, out=sys.stdout, err=sys.stderr,
                        as_department=args.as_department, timeout=args.timeout)


def cmd_material(args: argparse.Namespace) -> int:
    """Print (and with --send, publish) the MaterialSubmitted event of a file."""
    s = settings_from(args)
    registry = load_registry(s.departments_file)
    event = material_event_from_file(
        Path(args.file), case_id=args.case_id, department=args.department,
        material_type=args.material_type,
        holder={"id_type": args.holder_id_type, "id_number": args.holder_id_number,
                "name": args.holder_name},
        departments=registry.codes, name=args.name, document_number=args.document_number,
        declared_fields=parse_fields(args.field), form=args.form, task_id=args.task_id,
        material_id=args.material_id, event_id=args.event_id,
        uscc_exceptions=load_uscc_exceptions(s.uscc_exceptions_file))
    codec = get_codec()
    print(json.dumps(codec.to_json(event), ensure_ascii=False))  # noqa: T201
    if args.send:
        with Publisher(s.kafka_bootstrap, topics=Topics(s.topic_prefix),
                       departments=registry.codes, codec=codec,
                       config=producer_config(s, department_principal(args.department)),
                       uscc_exceptions=load_uscc_exceptions(s.uscc_exceptions_file)) as pub:
            topic = pub.send(event)
        print(f"sent to {topic}", file=sys.stderr)  # noqa: T201
    return 0


def cmd_scenario(args: argparse.Namespace) -> int:
    """Write seeded scenario traffic as JSON lines (for `produce`, tests, benchmarks)."""
    codec = get_codec()
    gen = ScenarioGenerator(ScenarioConfig(seed=args.seed))
    try:
        out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    except OSError as exc:
        raise OneWindowError(f"cannot write {args.output}: {exc.strerror}") from exc
    cases = events = materials = 0
    try:
        while (args.materials is None and cases < args.cases) or \
                (args.materials is not None and materials < args.materials):
            cases += 1
            for e in gen.case():
                is_material = e["type"] in ("MaterialSubmitted", "CertificateIssued")
                materials += is_material
                if args.only_materials and not is_material:
                    continue
                out.write(json.dumps(codec.to_json(e), ensure_ascii=False) + "\n")
                events += 1
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"{events} events from {cases} cases ({materials} materials)",  # noqa: T201
          file=sys.stderr)
    return 0


def cmd_simulate(args: Any) -> int:
    settings = settings_from(args)
    compression = args.compression if args.compression is not None \
        else settings.simulate_compression
    config = SimulationConfig(rate=args.rate, compression=compression,
                              backlog=None if args.backlog_hours is None
                              else timedelta(hours=args.backlog_hours), seed=args.seed,
                              max_events=args.events, max_seconds=args.duration,
                              invalid_rate=args.invalid_rate,
                              duplicate_rate=args.duplicate_rate,
                              around_the_clock=args.around_the_clock
                              or settings.simulate_around_the_clock)
    # SIGTERM (`onewindow up` stopping it) and Ctrl-C end the run as its limits do: the
    # cursor saved (the next run continues there), exit status 0
    with stop_on_signals() as stop:
        counts = simulate(settings, config, out=sys.stdout, stop=stop.is_set)
    print(f"simulate: sent {counts['sent']} events of {counts['cases']} cases "  # noqa: T201
          f"(+{counts['invalid']} invalid, +{counts['duplicates']} resent)")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("produce", help="publish a JSON-lines file of events")
    p.add_argument("file", help="JSON lines, one event per line (interfaces.md JSON form)")
    p.add_argument("--topic", help="send every event to this topic instead of its department's")
    p.add_argument("--as", dest="as_department", metavar="DEPT",
                   help="sign in as this department (dept-DEPT) for every event, as its "
                        "system would; default: each event as its own department")
    p.add_argument("--no-validate", action="store_true",
                   help="skip the source-side checks (the stream app still enforces them)")
    p.add_argument("--timeout", type=positive_float, default=30.0, metavar="SECONDS",
                   help="give up (exit status 1) when the broker has not acknowledged every "
                        "event within this many seconds (default 30)")
    add_common(p)
    p.set_defaults(func=cmd_produce)

    p = sub.add_parser("material",
                       help="print the MaterialSubmitted event of a file (sha256, size and "
                            "pages computed); --send publishes it")
    p.add_argument("file", help="the material: a PDF or an image (JPEG, PNG, GIF, TIFF, ...)")
    p.add_argument("--case-id", required=True)
    p.add_argument("--department", required=True, help="registered department code")
    p.add_argument("--material-type", required=True, help="ID_CARD, BUSINESS_LICENSE, ...")
    p.add_argument("--holder-id-type", required=True,
                   choices=["RESIDENT_ID", "USCC", "PASSPORT", "OTHER"])
    p.add_argument("--holder-id-number", required=True)
    p.add_argument("--holder-name", required=True)
    p.add_argument("--document-number", help="the document's own number, if recorded")
    p.add_argument("--field", action="append", metavar="KEY=VALUE",
                   help="a declared field read from the document (repeatable)")
    p.add_argument("--form", default="ELECTRONIC", choices=["ORIGINAL", "COPY", "ELECTRONIC"])
    p.add_argument("--task-id")
    p.add_argument("--name", help="display name (default: the file name)")
    p.add_argument("--material-id", help="default: a fresh unique id")
    p.add_argument("--event-id", help="default: derived from the material id")
    p.add_argument("--send", action="store_true", help="publish it to the department's topic")
    add_common(p)
    p.set_defaults(func=cmd_material)

    p = sub.add_parser("scenario", help="write seeded 一件事 scenario traffic as JSON lines")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--cases", type=positive_int, default=100,
                   help="this many cases (default 100)")
    g.add_argument("--materials", type=positive_int,
                   help="as many cases as it takes for this many materials")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--only-materials", action="store_true",
                   help="write only MaterialSubmitted and CertificateIssued events")
    p.add_argument("-o", "--output", help="file to write (default: stdout)")
    p.set_defaults(func=cmd_scenario)

    p = sub.add_parser("simulate", help="realistic department traffic (一件事 scenarios)")
    p.add_argument("--rate", type=positive_float, default=5.0,
                   help="events per second, at most")
    p.add_argument("--compression", type=at_most(positive_float, MAX_COMPRESSION), default=None,
                   help="simulated seconds per wall-clock second, counted in the centre's "
                        "opening hours (default ONEWINDOW_SIMULATE_COMPRESSION, else 300: a "
                        "working day in 84 s)")
    p.add_argument("--around-the-clock", action="store_true",
                   help="ignore the service centre's opening hours (working days 09:00-12:00 "
                        "and 13:30-17:30 Asia/Shanghai): clock time throughout "
                        "(ONEWINDOW_SIMULATE_AROUND_THE_CLOCK=true alike)")
    p.add_argument("--backlog-hours", type=at_most(non_negative_float, MAX_BACKLOG_HOURS),
                   default=None,
                   help="on the first run, the simulated clock starts this many hours of the "
                        "centre's open time in the past (default 35: a working week; clock "
                        "hours with --around-the-clock, default 72); a later run continues "
                        "where the last one stopped (at most this far back, and at least the "
                        "scripted opening's 200 open minutes; the cursor is kept in the data "
                        "directory)")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--events", type=positive_int, help="stop after this many events")
    p.add_argument("--duration", type=positive_float, help="stop after this many seconds")
    p.add_argument("--invalid-rate", type=at_most(non_negative_float, 1.0), default=0.01,
                   help="share of events spoiled on purpose, 0 to 1 (dead letters)")
    p.add_argument("--duplicate-rate", type=at_most(non_negative_float, 1.0), default=0.01,
                   help="share of events sent twice, 0 to 1")
    add_common(p)
    p.set_defaults(func=cmd_simulate)
