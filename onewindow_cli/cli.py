"""`onewindow`: one entry point for every process and tool of the project.

Each runtime declares its subcommands in its `commands` module (`register(subparsers)`);
this module imports them directly and adds the commands that wire several runtimes
together or stand on the core alone (`up`, `bench`, `bench-materials`, `soak`,
`provision`, `kafka`). Errors the user can fix (bad input, configuration) end the command
with exit status 2 and one readable line; a failed delivery to the broker (unreachable,
timed out, refused) with exit status 1 and one line; nothing here prints a traceback for
them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from contextlib import nullcontext
from typing import NoReturn

import counter.commands
import gateway.commands
import producers.commands
import sinks.commands
import stream_apps.commands
from onewindow.broker_wait import waiting_line
from onewindow.cli_options import add_common, settings_from, wait_seconds
from onewindow.departments import load_registry
from onewindow.errors import DeliveryError, OneWindowError
from onewindow.kafka_local import LocalKafka
from onewindow.provision import acl_plan, provision
from onewindow.security.kafka_auth import ADMIN, credentials_dir
from onewindow.stopping import Stopped, raise_on_signals, stop_on_signals
from onewindow.topics import Topics
from onewindow_cli import bench, soak, stack

#: Every module that adds subcommands, in the order `onewindow --help` lists them.
COMMAND_MODULES = (producers.commands, stream_apps.commands, sinks.commands,
                   counter.commands, gateway.commands, stack, bench, soak)


def cmd_provision(args: argparse.Namespace) -> int:
    """Topics, principals and ACLs (idempotent); `--show` prints who may do what."""
    s = settings_from(args)
    registry = load_registry(s.departments_file)
    if args.show:
        print(f"{'principal':<16} {'operation':<9} {'resource':<16} {'pattern':<8} name")  # noqa: T201
        for g in acl_plan(Topics(s.topic_prefix), registry.codes):
            print(f"{g.principal:<16} {g.operation:<9} {g.resource:<16} "  # noqa: T201
                  f"{g.pattern:<8} {g.name}")
        print(f"super user: {ADMIN} (the broker itself); "  # noqa: T201
              "nobody else may create topics or change ACLs")
        return 0
    created, report = provision(
        s, registry.codes, rotate=args.rotate, wait=args.wait, timeout=args.wait,
        say=waiting_line("provision", args.wait, s.kafka_bootstrap),
        tell=lambda line: print(f"onewindow provision: {line}",  # noqa: T201
                                file=sys.stderr, flush=True))
    print(f"topics ready on {s.kafka_bootstrap}; created {len(created)}: "  # noqa: T201
          + (", ".join(created) or "none"))
    if report is not None:
        print(f"principals: {len(report.users_created)} credential(s) set"  # noqa: T201
              + (f" ({', '.join(report.users_created)})" if report.users_created else "")
              + (f", revoked {', '.join(report.users_deleted)}" if report.users_deleted else "")
              + f"; ACLs: {report.acls_created} created, {report.acls_deleted} revoked;"
              f" passwords in {credentials_dir(s)}")
    return 0


def cmd_kafka(args: argparse.Namespace) -> int:
    """Run only the local broker in the foreground (for development)."""
    s = settings_from(args)
    broker = LocalKafka(data_dir=s.data_dir / "kafka", port=s.kafka_port,
                        controller_port=s.kafka_controller_port, version=s.kafka_version,
                        cache_dir=s.cache_dir, security=s.kafka_security_protocol,
                        credentials_dir=credentials_dir(s))
    with stop_on_signals() as stop:  # from the start on: a SIGTERM while it starts too
        try:
            broker.start(stop=stop)
            if not stop.is_set():
                print(f"Kafka {s.kafka_version} on {broker.bootstrap}; Ctrl-C stops it",  # noqa: T201
                      flush=True)
            stop.wait()
        finally:
            broker.stop()
    return 0


#: The namespace attribute that names the parser of the deepest subcommand parsed.
_PARSED_BY = "_onewindow_parsed_by"


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a refused command line is one line on stderr and exit 2, argparse's
    own last line (``onewindow bench: error: argument --rounds: ...``) without the usage
    of every option it printed first (three to ten lines before the one that says what
    is wrong; ``--help`` still shows it). Its subcommands' parsers are of this class too
    (``add_subparsers`` takes the parent's)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None
                         ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        # the deepest subcommand's parser returns first (argparse copies its namespace
        # into its parent's): its name is the one to blame for arguments left over
        if not hasattr(parsed, _PARSED_BY):
            setattr(parsed, _PARSED_BY, self.prog)
        return parsed, extras

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        """As argparse's, but an unknown option names the subcommand it was given to
        (``onewindow users add: error: unrecognized arguments: --bogus``): argparse reports
        it from the top parser, which left a newcomer guessing which command refused it."""
        parsed, extras = self.parse_known_args(args, namespace)
        prog = getattr(parsed, _PARSED_BY, self.prog)
        delattr(parsed, _PARSED_BY)
        if extras:
            self.exit(2, f"{prog}: error: unrecognized arguments: {' '.join(extras)}\n")
        return parsed


def build_parser() -> argparse.ArgumentParser:
    """The whole `onewindow` parser: every runtime's subcommands and this package's."""
    parser = OneLineParser(prog="onewindow", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("provision", help="create the topics, principals and ACLs (idempotent)")
    p.add_argument("--show", action="store_true", help="print who may do what, change nothing")
    p.add_argument("--rotate", action="append", default=[], metavar="PRINCIPAL",
                   help="give PRINCIPAL (e.g. dept-gaj) a new password (repeatable)")
    p.add_argument("--wait", type=wait_seconds, default=30.0, metavar="SECONDS",
                   help="how long to wait for the broker to answer, and then for each "
                        "step (a request timed out and sent again, every broker applying "
                        "the ACLs) (default 30); then exit status 1")
    add_common(p)
    p.set_defaults(func=cmd_provision)

    p = sub.add_parser("kafka", help="run the local Kafka broker from the jars in the foreground")
    p.set_defaults(func=cmd_kafka)

    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; its exit status (1 for a `DeliveryError`, 2 for any other
    `OneWindowError`, 130 for Ctrl-C). A command that sets ``unwind_on_stop`` (the
    benches: they start brokers, databases and workers of their own) runs under
    `onewindow.stopping.raise_on_signals`: SIGTERM or SIGINT unwinds it through its
    clean-up, then it ends with one line and 128 + the signal's number (143, 130)."""
    args = build_parser().parse_args(argv)
    unwind = raise_on_signals() if getattr(args, "unwind_on_stop", False) else nullcontext()
    try:
        with unwind:
            return int(args.func(args) or 0)
    except Stopped as exc:
        print(f"onewindow {args.command}: stopped by {exc.name} before the end; the "  # noqa: T201
              "processes it started are stopped, nothing was reported", file=sys.stderr)
        return exc.exit_status
    except DeliveryError as exc:
        print(f"onewindow {args.command}: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    except OneWindowError as exc:
        print(f"onewindow {args.command}: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `onewindow scenario | head`: the reader left; say nothing
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
