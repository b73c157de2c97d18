"""Subcommands of the counter side: `onewindow counter` and `onewindow users` (the local
user store of the counter app's staff)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError

from counter import staff_migrations
from onewindow.cli_options import add_common, log_level, settings_from, tcp_port
from onewindow.config import Settings
from onewindow.errors import ConfigError
from onewindow.listening import listening_socket, shown_address
from onewindow.logs import configure_logging
from onewindow.read_model.engine import make_engine, shown_url, wait_for_database
from onewindow.security import passwords
from onewindow.security.id_key import resolve_id_hash_key
from onewindow.staff import users
from onewindow.stopping import stop_on_signals


def cmd_counter(args: argparse.Namespace) -> int:
    """Serve the counter API with uvicorn on 127.0.0.1 (Ctrl-C/SIGTERM stop it)."""
    # FastAPI, uvicorn and SQLAlchemy (~0.8 s to import) load only for this command, so
    # the other `onewindow` commands start quickly.
    import uvicorn  # noqa: PLC0415 - heavy, see above

    from counter.app import create_app  # noqa: PLC0415 - heavy, see above

    s = settings_from(args)
    # the ID hash key first: without one the command stops in one line, before the app
    # touches the database (create_app resolves it again, and warns for the dev key)
    resolve_id_hash_key(s, warn=False)
    port = s.counter_port if args.port is None else args.port
    configure_logging(s, level=args.loglevel)
    if not _database_answers(s):
        return 0  # SIGTERM/SIGINT while waiting for the database
    sock = listening_socket(args.host, port)  # a port in use: one line, before the URL
    app = create_app(s)
    print(f"counter API on http://{shown_address(args.host, port)}/docs",  # noqa: T201
          flush=True)
    # access_log off: uvicorn would log query strings, which may hold an ID number; the
    # app logs method, route template and status instead.
    # timeout_graceful_shutdown: on SIGTERM/Ctrl-C uvicorn waits at most 2 s for open
    # responses, then cancels them: the endless change feeds (SSE) end there.
    # proxy_headers off: uvicorn would believe X-Forwarded-For from 127.0.0.1; the app
    # believes it only from ONEWINDOW_TRUSTED_PROXIES (counter/app.py).
    with sock:
        uvicorn.Server(uvicorn.Config(
            app, host=args.host, port=port, access_log=False, log_level="warning",
            timeout_graceful_shutdown=2, proxy_headers=False)).run(sockets=[sock])
    return 0


def _database_answers(settings: Settings) -> bool:
    """Wait until the read model's database accepts a connection, retrying with backoff
    (one log line per attempt: a PostgreSQL server still starting, or down); False when
    SIGTERM or SIGINT comes first. The counter needs nothing else at start."""
    with stop_on_signals() as stop:
        return wait_for_database(settings.database_url, stop=stop,
                                 say=logging.getLogger("onewindow.counter").warning)


def _password(args: argparse.Namespace) -> tuple[str, bool]:
    """The new password: one line from standard input with --password-stdin, else a
    generated one (then True: print it, once)."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    return passwords.generate(), True


def cmd_users(args: argparse.Namespace) -> int:
    """`onewindow users add|disable|enable|reset-password|set-window|list|token|revoke-tokens`."""
    s = settings_from(args)
    os.umask(0o077)  # a new SQLite file holding the user store is the operator's alone
    try:
        engine = make_engine(s.database_url, writer=True)
        staff_migrations.upgrade(engine)
    except (ArgumentError, NoSuchModuleError, DatabaseError) as exc:  # OperationalError is one
        raise ConfigError(f"cannot open the user store at {shown_url(s.database_url)!r}: "
                          f"{str(exc).splitlines()[0][:200]}") from None
    now = datetime.now(UTC)
    out = sys.stdout
    if args.action == "list":
        for u in users.list_users(engine):
            state = "disabled" if u.disabled else (
                f"locked until {u.locked_until:%Y-%m-%d %H:%M}Z"
                if u.locked_until and u.locked_until > now else "active")
            last = f"{u.last_login_at:%Y-%m-%d %H:%M}Z" if u.last_login_at else "never"
            out.write(f"{u.username:<20} {','.join(u.roles):<28} {state:<26} "
                      f"last sign-in {last}"
                      + (f"  window {u.window_id}" if u.window_id else "") + "\n")
        return 0
    if args.action == "add":
        password, generated = _password(args)
        users.add_user(engine, args.username, args.role or [], password, now,
                       display_name=args.display_name, window_id=args.window)
        [view] = [u for u in users.list_users(engine) if u.username == args.username]
        out.write(f"user {args.username} added with roles {','.join(view.roles)}\n")
        if generated:
            out.write(f"password (shown once): {password}\n")
    elif args.action == "reset-password":
        password, generated = _password(args)
        users.reset_password(engine, args.username, password, now)
        out.write(f"password of {args.username} reset; their sessions ended\n")
        if generated:
            out.write(f"password (shown once): {password}\n")
    elif args.action == "set-window":
        users.set_window(engine, args.username, None if args.none else args.window)
        out.write(f"window of {args.username}: {'none' if args.none else args.window} "
                  "(from their next sign-in)\n")
    elif args.action in ("disable", "enable"):
        users.set_disabled(engine, args.username, args.action == "disable", now)
        out.write(f"user {args.username} {args.action}d\n")
    elif args.action == "token":
        token = users.issue_token(engine, args.username, args.label, now)
        out.write(f"API token of {args.username} (shown once; send it as "
                  f"'Authorization: Bearer ...'):\n{token}\n")
    elif args.action == "revoke-tokens":
        n = users.revoke_tokens(engine, args.username, now)
        out.write(f"{n} API token(s) of {args.username} revoked\n")
    return 0


def register(sub: Any) -> None:
    """Add `counter` and `users` to `sub` (an argparse subparsers action)."""
    p = sub.add_parser("counter", help="serve the counter web API (read model, JSON, /docs)")
    p.add_argument("--port", type=tcp_port, help="port (ONEWINDOW_COUNTER_PORT)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--loglevel", type=log_level, default=None)
    add_common(p, database=True)
    p.set_defaults(func=cmd_counter)

    u = sub.add_parser("users", help="the counter app's local user store (staff sign-in)")
    actions = u.add_subparsers(dest="action", required=True)
    roles_help = "clerk, supervisor, auditor or ops (repeat for several)"
    a = actions.add_parser("add", help="add a user (prints a generated password once)")
    a.add_argument("username")
    a.add_argument("--role", action="append", required=True, help=roles_help)
    a.add_argument("--display-name", dest="display_name")
    a.add_argument("--password-stdin", dest="password_stdin", action="store_true",
                   help="read the password from one line of standard input")
    a.add_argument("--window", help="the counter window they work at (W07): the home "
                                    "page lists its latest cases")
    w = actions.add_parser("set-window", help="set or clear the counter window of a user")
    w.add_argument("username")
    which = w.add_mutually_exclusive_group(required=True)
    which.add_argument("window", nargs="?", help="the window id (W07)")
    which.add_argument("--none", action="store_true", help="no window")
    r = actions.add_parser("reset-password", help="new password; ends their sessions")
    r.add_argument("username")
    r.add_argument("--password-stdin", dest="password_stdin", action="store_true")
    for name, text in (("disable", "disable a user (ends sessions, tokens stop working)"),
                       ("enable", "enable a user again (clears a lockout)"),
                       ("revoke-tokens", "revoke every API token of a user")):
        actions.add_parser(name, help=text).add_argument("username")
    t = actions.add_parser("token", help="issue an API token (bearer) for a user")
    t.add_argument("username")
    t.add_argument("--label", default="api", help="what the token is for")
    actions.add_parser("list", help="list users, roles and state")
    for parser in actions.choices.values():
        add_common(parser, database=True)
    u.set_defaults(func=cmd_users)
