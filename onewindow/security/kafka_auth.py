"""Kafka principals, their credentials, and the client settings that sign in with them.

Every client of the broker authenticates with SASL/SCRAM-SHA-512 as its own principal
(interfaces.md, Kafka: "who may do what"). The principals are:

| principal       | who                                         | may (ACLs, `onewindow.provision`)       |
|-----------------|---------------------------------------------|-----------------------------------------|
| `admin`         | the broker itself (inter-broker, controller) | super user; provisioning signs in as it |
| `dept-<code>`   | one department system                        | write `dept.<code>.events`, nothing else |
| `svc-stream`    | both Faust stream apps                      | read inputs, write outputs, own topics  |
| `svc-sink`      | the sink and the rebuild                    | read the four output topics             |
| `svc-ops`       | operators' tools                            | read the dead letters                   |
| `svc-gateway`   | the HTTP ingestion gateway                  | write every input topic                 |

Passwords are random, generated on first need into a credentials directory (mode 0700,
one file per principal, mode 0600): `ONEWINDOW_KAFKA_CREDENTIALS_DIR`, else
`<data dir>/credentials`. A process may instead be given its own principal and password
in the environment (`ONEWINDOW_KAFKA_USERNAME`, `ONEWINDOW_KAFKA_PASSWORD` or
`ONEWINDOW_KAFKA_PASSWORD_FILE`), as docker-compose does. Nothing has a default password.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onewindow.config import Settings, secret_value
from onewindow.errors import ConfigError
from onewindow.logs import librdkafka_logger

ADMIN = "admin"
STREAM = "svc-stream"
SINK = "svc-sink"
OPS = "svc-ops"
GATEWAY = "svc-gateway"
SERVICES = (STREAM, SINK, OPS, GATEWAY)
MECHANISM = "SCRAM-SHA-512"
SECURITY_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL", "PLAINTEXT")

_PRINCIPAL_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


def department_principal(code: str) -> str:
    """The principal of a department's system: `dept-<code>`."""
    return f"dept-{code}"


def department_of_principal(principal: str) -> str | None:
    """The department code of a `dept-<code>` principal, else None."""
    return principal[5:] if principal.startswith("dept-") and len(principal) > 5 else None


class CredentialStore:
    """Passwords of principals, one file each in a private directory.

    `ensure(p)` returns p's password, generating and saving a random one (32 URL-safe
    characters: no `,` or `=`, which Kafka's SCRAM parser splits on) the first time."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _path(self, principal: str) -> Path:
        if not _PRINCIPAL_RE.match(principal):
            raise ConfigError(f"not a principal name: {principal!r}")
        return self.directory / f"{principal}.secret"

    def get(self, principal: str) -> str | None:
        """The saved password, or None."""
        try:
            return self._path(principal).read_text("utf-8").strip() or None
        except FileNotFoundError:
            return None

    def put(self, principal: str, password: str) -> None:
        """Save `password` (owner-only file, written atomically)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        path = self._path(principal)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(password + "\n")
        os.replace(tmp, path)

    def ensure(self, principal: str) -> str:
        """The saved password, or a new random one saved now."""
        have = self.get(principal)
        if have:
            return have
        password = secrets.token_urlsafe(24)
        self.put(principal, password)
        return password

    def remove(self, principal: str) -> None:
        self._path(principal).unlink(missing_ok=True)

    def principals(self) -> list[str]:
        """Every principal with a saved password."""
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("*.secret"))


def credentials_dir(settings: Settings) -> Path:
    """`ONEWINDOW_KAFKA_CREDENTIALS_DIR`, else `<data dir>/credentials`."""
    return settings.kafka_credentials_dir or settings.data_dir / "credentials"


def credential_store(settings: Settings) -> CredentialStore:
    return CredentialStore(credentials_dir(settings))


@dataclass(frozen=True)
class Credential:
    principal: str
    password: str


def credential_for(settings: Settings, principal: str) -> Credential:
    """The credential a process signs in with when it acts as `principal`.

    The environment wins (`ONEWINDOW_KAFKA_USERNAME` with `ONEWINDOW_KAFKA_PASSWORD` or
    `ONEWINDOW_KAFKA_PASSWORD_FILE`: a deployment gives each process its own), else the
    credentials directory. Raises ConfigError, naming what to do, when there is none."""
    if settings.kafka_username:
        password = secret_value(settings.kafka_password, settings.kafka_password_file,
                                "ONEWINDOW_KAFKA_PASSWORD_FILE")
        if not password:
            raise ConfigError("ONEWINDOW_KAFKA_USERNAME is set but neither "
                              "ONEWINDOW_KAFKA_PASSWORD nor ONEWINDOW_KAFKA_PASSWORD_FILE")
        return Credential(settings.kafka_username, password)
    password = credential_store(settings).get(principal)
    if password is None:
        raise ConfigError(f"no Kafka credential for {principal} in {credentials_dir(settings)}: "
                          "run `onewindow provision` (or `onewindow up`), or set "
                          "ONEWINDOW_KAFKA_USERNAME and ONEWINDOW_KAFKA_PASSWORD")
    return Credential(principal, password)


def client_config(settings: Settings, principal: str) -> dict[str, Any]:
    """librdkafka (confluent-kafka) settings to reach the cluster as `principal`:
    `bootstrap.servers` plus the SASL/SCRAM-SHA-512 sign-in (and TLS trust for SASL_SSL);
    only `bootstrap.servers` when the cluster is PLAINTEXT (a benchmark baseline).
    Every consumer built on it reads `read_committed` (interfaces.md, transactions).
    librdkafka's own log lines go to Python logging (`onewindow.logs.librdkafka_logger`),
    never straight to stderr: a process's log gets them, a one-shot command's terminal not."""
    conf: dict[str, Any] = {"bootstrap.servers": settings.kafka_bootstrap,
                            "isolation.level": "read_committed",
                            "logger": librdkafka_logger()}
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return conf
    cred = credential_for(settings, principal)
    conf.update({"security.protocol": protocol, "sasl.mechanism": MECHANISM,
                 "sasl.username": cred.principal, "sasl.password": cred.password})
    if protocol == "SASL_SSL" and settings.kafka_ssl_ca_file is not None:
        conf["ssl.ca.location"] = str(settings.kafka_ssl_ca_file)
    return conf


def producer_config(settings: Settings, principal: str) -> dict[str, Any]:
    """`client_config` without the consumer-only `isolation.level`."""
    conf = client_config(settings, principal)
    conf.pop("isolation.level")
    return conf


def kafka_env(settings: Settings) -> dict[str, str]:
    """Environment variables that point a child process at `settings`'s cluster and
    credentials (the bootstrap, the security protocol, the credentials directory and,
    with SASL_SSL, the CA) and give it the cluster's replication factor (the topics a
    worker creates, its changelogs, get as many copies as provisioned ones)."""
    env = {"ONEWINDOW_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
           "ONEWINDOW_KAFKA_SECURITY_PROTOCOL": settings.kafka_security_protocol,
           "ONEWINDOW_KAFKA_CREDENTIALS_DIR": str(credentials_dir(settings).resolve()),
           "ONEWINDOW_REPLICATION_FACTOR": str(settings.replication_factor)}
    if settings.kafka_ssl_ca_file is not None:
        env["ONEWINDOW_KAFKA_SSL_CA_FILE"] = str(settings.kafka_ssl_ca_file)
    return env
