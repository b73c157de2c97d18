"""Subcommands of the gateway: `onewindow gateway` (the HTTP ingestion gateway) and
`onewindow gateway-keys issue|list|rotate|revoke` (the departments' API keys)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError

from gateway import key_migrations, keys
from onewindow.cli_options import add_common, log_level, settings_from, tcp_port
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.errors import ConfigError
from onewindow.listening import listening_socket, shown_address
from onewindow.logs import configure_logging
from onewindow.read_model.engine import make_engine, shown_url, wait_for_database
from onewindow.security.kafka_auth import GATEWAY, credential_for
from onewindow.stopping import stop_on_signals


def cmd_gateway(args: argparse.Namespace) -> int:
    """Serve the gateway with uvicorn (Ctrl-C/SIGTERM stop it)."""
    # FastAPI, uvicorn and SQLAlchemy load only for this command (see counter.commands)
    import uvicorn  # noqa: PLC0415 - heavy, see above

    from gateway.app import create_app  # noqa: PLC0415 - heavy, see above

    s = settings_from(args)
    if s.kafka_security_protocol != "PLAINTEXT":
        credential_for(s, GATEWAY)  # no credential: one line, before anything starts
    tls = (s.gateway_tls_cert_file, s.gateway_tls_key_file)
    if (tls[0] is None) != (tls[1] is None):
        raise ConfigError("ONEWINDOW_GATEWAY_TLS_CERT_FILE and ONEWINDOW_GATEWAY_TLS_KEY_FILE "
                          "go together")
    port = s.gateway_port if args.port is None else args.port
    configure_logging(s, level=args.loglevel)
    if not _database_answers(s):
        return 0  # SIGTERM/SIGINT while waiting for the database
    # the broker is not waited for: librdkafka connects when it can, requests meanwhile
    # are 503 and /healthz says so
    sock = listening_socket(args.host, port)  # a port in use: one line, before the URL
    app = create_app(s)
    scheme = "https" if tls[0] else "http"
    print(f"ingestion gateway on {scheme}://{shown_address(args.host, port)}/docs",  # noqa: T201
          flush=True)
    # access_log off: the app logs method, route, status and department itself.
    # timeout_graceful_shutdown: on SIGTERM open requests get 5 s to be answered.
    with sock:
        uvicorn.Server(uvicorn.Config(
            app, host=args.host, port=port, access_log=False, log_level="warning",
            timeout_graceful_shutdown=5, proxy_headers=False,
            ssl_certfile=str(tls[0]) if tls[0] else None,
            ssl_keyfile=str(tls[1]) if tls[1] else None)).run(sockets=[sock])
    return 0


def _database_answers(settings: Settings) -> bool:
    """Wait until the key store's database accepts a connection, with backoff (one log
    line per attempt); False when SIGTERM or SIGINT comes first (as the counter does)."""
    with stop_on_signals() as stop:
        return wait_for_database(settings.database_url, stop=stop,
                                 say=logging.getLogger("onewindow.gateway").warning)


def _store(s: Settings) -> Engine:
    os.umask(0o077)  # a new SQLite file holding the key store is the operator's alone
    try:
        engine = make_engine(s.database_url, writer=True)
        key_migrations.upgrade(engine)
    except (ArgumentError, NoSuchModuleError, DatabaseError) as exc:  # OperationalError is one
        raise ConfigError(f"cannot open the key store at {shown_url(s.database_url)!r}: "
                          f"{str(exc).splitlines()[0][:200]}") from None
    return engine


def _registered(s: Settings, department: str) -> None:
    if department not in load_registry(s.departments_file).codes:
        raise ConfigError(f"{department}: not a registered department")


def _show(issued: keys.IssuedKey) -> str:
    return (f"key {issued.key_id} of {issued.department} (shown once; the department's "
            f"system sends it as 'Authorization: Bearer ...'):\n{issued.key}\n")


def cmd_gateway_keys(args: argparse.Namespace) -> int:
    """`onewindow gateway-keys issue|list|rotate|revoke [DEPT]`."""
    s = settings_from(args)
    engine = _store(s)
    now = datetime.now(UTC)
    out = sys.stdout
    try:
        if args.action == "list":
            for k in keys.list_keys(engine, args.department):
                state = "live" if k.live(now) else "revoked"
                if k.revoked_at is not None and k.live(now):
                    state = f"live until {k.revoked_at:%Y-%m-%d %H:%M}Z"
                elif k.revoked_at is not None:
                    state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}Z"
                out.write(f"{k.key_id}  {k.department:<12} {state:<28} "
                          f"issued {k.created_at:%Y-%m-%d %H:%M}Z  {k.label}\n")
            return 0
        _registered(s, args.department)
        if args.action == "issue":
            out.write(_show(keys.issue(engine, args.department, args.label, now)))
        elif args.action == "rotate":
            grace = timedelta(minutes=args.grace_minutes)
            issued, n = keys.rotate(engine, args.department, args.label, now, grace)
            out.write(_show(issued))
            out.write(f"{n} older key(s) of {args.department} stop working "
                      + ("now" if not args.grace_minutes else
                         f"at {now + grace:%Y-%m-%d %H:%M}Z") + "\n")
        elif args.action == "revoke":
            n = keys.revoke(engine, args.department, now, key_id=args.key)
            out.write(f"{n} key(s) of {args.department} revoked\n")
    finally:
        engine.dispose()
    return 0


def register(sub: Any) -> None:
    """Add `gateway` and `gateway-keys` to `sub` (an argparse subparsers action)."""
    p = sub.add_parser("gateway", help="serve the HTTP ingestion gateway (departments "
                                       "without a Kafka client; /docs)")
    p.add_argument("--port", type=tcp_port, help="port (ONEWINDOW_GATEWAY_PORT)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--loglevel", type=log_level, default=None)
    add_common(p, database=True)
    p.set_defaults(func=cmd_gateway)

    k = sub.add_parser("gateway-keys", help="the departments' API keys of the gateway")
    actions = k.add_subparsers(dest="action", required=True)
    a = actions.add_parser("issue", help="a new key for a department (shown once)")
    a.add_argument("department")
    a.add_argument("--label", default="", help="which system of the department it is for")
    r = actions.add_parser("rotate", help="a new key; the department's other keys stop "
                                          "working after a grace period")
    r.add_argument("department")
    r.add_argument("--label", default="")
    r.add_argument("--grace-minutes", dest="grace_minutes", type=int, default=0,
                   help="minutes the old keys keep working (default 0: revoked now)")
    v = actions.add_parser("revoke", help="revoke a department's keys (403 from now on)")
    v.add_argument("department")
    v.add_argument("--key", help="only this key id (default: every key of the department)")
    li = actions.add_parser("list", help="list the keys (never the keys themselves)")
    li.add_argument("department", nargs="?")
    for parser in actions.choices.values():
        add_common(parser, database=True)
    k.set_defaults(func=cmd_gateway_keys)
