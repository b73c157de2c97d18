"""`onewindow up`: the whole local stack in the foreground, on the embedded default.

Local Kafka from the jars, the topics, the stream workers, the sinks, the counter web
app and (with --simulate) department traffic, each a child process with its log under
`var/logs/`. Ctrl-C or SIGTERM stops them in reverse order (each finishes its batch and
commits), then the broker.

The secret of the keyed hash of ID numbers is generated on the first start into
`<data dir>/secrets/id-hash.key` (32 random bytes, mode 0600) and reused after; the
children get its path (ONEWINDOW_ID_HASH_KEY_FILE). An operator's own
ONEWINDOW_ID_HASH_KEY or ONEWINDOW_ID_HASH_KEY_FILE wins.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from counter import staff_migrations
from onewindow.cli_options import add_common, settings_from
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.kafka_local import LocalKafka
from onewindow.provision import provision
from onewindow.read_model.engine import make_engine
from onewindow.security.id_key import ensure_key_file, resolve_id_hash_key, stack_key_file
from onewindow.security.kafka_auth import credentials_dir, kafka_env
from onewindow.staff import users


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None


def _wait_http(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback only
                if resp.status < 500:
                    return True
        except OSError:
            time.sleep(0.5)
    return False


def id_key_env(settings: Settings) -> dict[str, str]:
    """What tells `up`'s children the ID hash key: the operator's own
    (ONEWINDOW_ID_HASH_KEY or _FILE, already in the environment: nothing to add), the
    development key when asked for (--insecure-dev-key), else the stack's generated key
    file, created on the first start and reused after (its path, never the key). Checks
    the key now, so a bad one stops `up` before anything starts."""
    if settings.id_hash_key is not None or settings.id_hash_key_file is not None:
        env: dict[str, str] = {}
    elif settings.insecure_dev_key:
        env = {"ONEWINDOW_INSECURE_DEV_KEY": "true"}
    else:
        path = stack_key_file(settings)
        if ensure_key_file(path):
            print(f"generated the ID hash key {path} (back it up with the data: "  # noqa: T201
                  "docs/operations.md)", flush=True)
        env = {"ONEWINDOW_ID_HASH_KEY_FILE": str(path.resolve())}
        settings = settings.model_copy(update={"id_hash_key_file": path.resolve()})
    resolve_id_hash_key(settings, warn=False)  # the children warn, each in its log
    return env


#: the user `up` creates in an empty user store, and its roles (not auditor: the one who
#: runs the centre is not the one who audits it; add an auditor with `onewindow users`)
FIRST_ADMIN = ("admin", ["supervisor", "ops"])


def _cli_name() -> str:
    """How to call `onewindow` from here: the name when it is on PATH, else the script
    beside this Python (`.venv/bin/onewindow` after `make run`)."""
    beside = Path(sys.executable).parent / "onewindow"
    on_path = shutil.which("onewindow")
    if on_path and Path(on_path).resolve() == beside.resolve():
        return "onewindow"
    return os.path.relpath(beside) if beside.exists() else "onewindow"


def first_admin(settings: Settings) -> str | None:
    """The staff store migrated; on an empty user store, the first administrator's
    generated password (to print once), else None."""
    engine = make_engine(settings.database_url, writer=True)
    try:
        staff_migrations.upgrade(engine)
        return users.ensure_first_user(engine, FIRST_ADMIN[0], list(FIRST_ADMIN[1]),
                                       datetime.now(UTC))
    finally:
        engine.dispose()


def up(settings: Settings, *, simulate: bool, rate: float, compression: float,
       external_kafka: bool) -> int:
    # Everything under the data directory is the operator's alone: the broker's log
    # segments (plaintext input), the read model, the RocksDB state, the credentials,
    # the ID hash key.
    os.umask(0o077)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.data_dir, 0o700)
    key_env = id_key_env(settings)
    logs = settings.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    broker = None
    if not external_kafka:
        broker = LocalKafka(data_dir=settings.data_dir / "kafka", port=settings.kafka_port,
                            controller_port=settings.kafka_controller_port,
                            version=settings.kafka_version, cache_dir=settings.cache_dir,
                            security=settings.kafka_security_protocol,
                            credentials_dir=credentials_dir(settings))
        print(f"starting Kafka {settings.kafka_version} (KRaft) ...", flush=True)  # noqa: T201
        broker.start()
    bootstrap = broker.bootstrap if broker else settings.kafka_bootstrap
    registry = load_registry(settings.departments_file)
    settings = settings.model_copy(update={"kafka_bootstrap": bootstrap})
    if broker is not None and broker.security == "SASL_SSL":
        settings = settings.model_copy(update={"kafka_ssl_ca_file": broker.ca_file})
    provision(settings, registry.codes)  # topics, principals, ACLs
    admin_password = first_admin(settings)
    py = [sys.executable, "-m", "onewindow_cli"]
    children = [
        Child("worker", [*py, "worker"]),
        Child("materials-worker", [*py, "materials-worker"]),
        Child("sink", [*py, "sink"]),
        Child("counter", [*py, "counter"]),
    ]
    if simulate:
        children.append(Child("simulate", [*py, "simulate", "--rate", str(rate),
                                           "--compression", str(compression)]))
    env = dict(os.environ, **kafka_env(settings), **key_env)
    try:
        for c in children:
            c.log = logs / f"{c.name}.log"
            c.proc = subprocess.Popen(c.argv, env=env, stdout=c.log.open("ab"),
                                      stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{settings.counter_port}"
        lines = [f"onewindow is up (Kafka on {bootstrap}, read model {settings.database_url})"]
        _wait_http(f"{base}/healthz", 60)
        lines += [f"  sign in          {base}/login",
                  f"  counter screen   {base}/",
                  f"  window board     {base}/board",
                  f"  progress lookup  {base}/lookup",
                  f"  access log       {base}/audit",
                  f"  API docs         {base}/docs",
                  f"  metrics          {base}/metrics"]
        lines += [f"  worker metrics   http://127.0.0.1:{settings.worker_web_port}/metrics"]
        lines += [f"  logs             {logs}/"]
        cli = _cli_name()
        if admin_password is not None:
            lines += [f"sign in as {FIRST_ADMIN[0]} with the password {admin_password}",
                      f"  (shown once; `{cli} users reset-password admin` sets a new one,"
                      f" `{cli} users add NAME --role clerk` adds staff, `--role auditor`"
                      " an auditor for /audit)"]
        lines += ["Ctrl-C stops everything."]
        print("\n".join(lines), flush=True)  # noqa: T201
        while not stop.is_set():
            for c in children:
                if c.proc is not None and c.proc.poll() is not None:
                    if c.name == "simulate" and c.proc.returncode == 0:
                        continue
                    print(f"{c.name} exited with {c.proc.returncode}; see {c.log}",  # noqa: T201
                          file=sys.stderr)
                    stop.set()
            stop.wait(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping ...", flush=True)  # noqa: T201
        for c in reversed(children):
            if c.proc is not None and c.proc.poll() is None:
                os.killpg(c.proc.pid, signal.SIGTERM)
        for c in reversed(children):
            if c.proc is not None:
                try:
                    c.proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(c.proc.pid, signal.SIGKILL)
        if broker is not None:
            broker.stop()
    failed = [c.name for c in children
              if c.proc is not None and c.proc.returncode not in (0, -15, 143)]
    return 1 if failed else 0


def cmd_up(args: argparse.Namespace) -> int:
    s = settings_from(args)
    external = args.bootstrap is not None or "ONEWINDOW_KAFKA_BOOTSTRAP" in os.environ
    return up(s, simulate=args.simulate, rate=args.rate, compression=args.compression,
              external_kafka=external)


def register(sub: Any) -> None:
    p = sub.add_parser("up", help="start the whole local stack in the foreground")
    p.add_argument("--simulate", action="store_true", help="also run simulated department traffic")
    p.add_argument("--rate", type=float, default=5.0, help="simulated events per second")
    p.add_argument("--compression", type=float, default=60.0,
                   help="simulated seconds per wall-clock second")
    add_common(p, database=True)
    p.set_defaults(func=cmd_up)
