"""Subcommands of the producer side: `onewindow produce`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def cmd_produce(args: argparse.Namespace) -> int:
    from onewindow.cli import settings_from
    from producers.jsonl import produce_file

    return produce_file(settings_from(args), Path(args.file), topic=args.topic,
                        validate=not args.no_validate, out=sys.stdout, err=sys.stderr)


def register(sub: Any) -> None:
    from onewindow.cli import add_common

    p = sub.add_parser("produce", help="publish a JSON-lines file of events")
    p.add_argument("file", help="JSON lines, one event per line (interfaces.md JSON form)")
    p.add_argument("--topic", help="send every event to this topic instead of its department's")
    p.add_argument("--no-validate", action="store_true",
                   help="skip the source-side checks (the stream app still enforces them)")
    add_common(p)
    p.set_defaults(func=cmd_produce)
