"""Typed settings: one loader for every process, environment prefix ONEWINDOW_.

Defaults run the whole stack on one laptop with nothing configured: a local Kafka
from the jars on 127.0.0.1:19092 and a SQLite read model under ./var/. Nothing defaults
to a path beside the installed code: the data directory is `var/` under the current
directory, the download cache is per user (`$XDG_CACHE_HOME/onewindow`, else
`~/.cache/onewindow`), so a non-editable install works from anywhere.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from onewindow.domain.limits import MAX_MATERIALS_PER_KEY
from onewindow.errors import ConfigError
from onewindow.topics import prefix_problem

#: The log levels a process takes (`ONEWINDOW_LOG_LEVEL`, a command's ``--loglevel``).
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def user_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/onewindow`, else `~/.cache/onewindow` (the XDG base directory
    specification): where the Kafka jars are kept once downloaded."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "onewindow"


class Settings(BaseSettings):
    """Every knob of onewindow; each field reads ONEWINDOW_<FIELD> from the environment."""

    model_config = SettingsConfigDict(env_prefix="ONEWINDOW_", extra="ignore")

    # default: the local broker, on ONEWINDOW_KAFKA_PORT (see _bootstrap_follows_port)
    kafka_bootstrap: str = "127.0.0.1:19092"
    # How clients sign in (onewindow.security.kafka_auth): SASL/SCRAM-SHA-512 over
    # SASL_PLAINTEXT by default (a loopback broker), SASL_SSL in production; PLAINTEXT
    # only for a benchmark baseline. Each process's own principal may come from the
    # environment; otherwise its password is read from the credentials directory.
    kafka_security_protocol: Literal["SASL_PLAINTEXT", "SASL_SSL", "PLAINTEXT"] = \
        "SASL_PLAINTEXT"
    kafka_credentials_dir: Path | None = None
    kafka_username: str | None = None
    kafka_password: SecretStr | None = None
    kafka_password_file: Path | None = None
    kafka_ssl_ca_file: Path | None = None
    topic_prefix: str = ""
    # at least one (0 and -1 reached Faust and ended a worker in a traceback)
    partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)

    database_url: str = "sqlite:///var/onewindow.db"
    departments_file: Path | None = None
    calendar_override_file: Path | None = None
    # The operator's list of known-valid USCCs that fail their check character (domain.md
    # section 2), one per line (onewindow.uscc_exceptions); none when unset.
    uscc_exceptions_file: Path | None = None

    # Local Kafka from the jars (onewindow up, tests, CI).
    kafka_version: str = "3.9.2"
    cache_dir: Path = Field(default_factory=user_cache_dir)
    data_dir: Path = Field(default_factory=lambda: Path.cwd() / "var")
    kafka_port: int = Field(default=19092, ge=1, le=65535)
    kafka_controller_port: int = Field(default=19093, ge=1, le=65535)

    # Processes and their HTTP ports. metrics_host: the interface the workers' and the
    # sink's /metrics pages bind (0.0.0.0 in a container, so Prometheus can reach them).
    metrics_host: str = "127.0.0.1"
    worker_web_port: int = Field(default=6066, ge=1, le=65535)
    materials_web_port: int = Field(default=6067, ge=1, le=65535)
    sink_metrics_port: int = Field(default=9102, ge=0, le=65535)  # 0: no /metrics server
    counter_port: int = Field(default=8000, ge=1, le=65535)
    # Health of the long-running consumers (onewindow.domain.health, docs/operations.md):
    # /healthz turns 503 when a worker or the sink has made no progress for stall_seconds
    # while records wait, or its loop or batch is stuck that long. A stop (SIGTERM/SIGINT)
    # of a stream worker that has not ended after stop_timeout_seconds is cut short.
    stall_seconds: float = Field(default=120.0, gt=0)
    stop_timeout_seconds: float = Field(default=20.0, gt=0)
    # RocksDB memory of a stream worker's tables, all partitions together: one block
    # cache with the memtables charged to it (stream_apps/table_store.py), MiB.
    table_memory_mib: int = Field(default=64, ge=8)
    # Warm copies of each table partition a case-state or materials worker keeps for
    # another worker of its group (Faust's table_standby_replicas; docs/operations.md,
    # "Several workers"): 0 with one worker; `onewindow up --workers N` makes it 1 for N > 1.
    table_standby_replicas: int = Field(default=0, ge=0)
    # Most materials one index key of the materials worker holds (docs/materials.md
    # "Bounds"; onewindow.domain.limits.MAX_MATERIALS_PER_KEY): past it a material is
    # compared with those held, not held, counted (outcome="overflow") and logged.
    materials_max_per_key: int = Field(default=MAX_MATERIALS_PER_KEY, ge=1)

    # Secret for the keyed hash of citizen and company ID numbers (the stream apps, the
    # sink and the counter share it). No default: the key, else the file holding it, else
    # the built-in development key only with insecure_dev_key (--insecure-dev-key);
    # onewindow.security.id_key.resolve_id_hash_key decides and refuses anything else.
    id_hash_key: SecretStr | None = None
    id_hash_key_file: Path | None = None
    insecure_dev_key: bool = False

    # The counter app's sign-in and limits (counter/auth.py, counter/limits.py,
    # docs/access-control.md). trusted_proxies: comma-separated addresses or networks
    # whose X-Forwarded-For/-Proto the app believes (none by default).
    trusted_proxies: str = ""
    cookie_secure: bool | None = None  # None: Secure when the request came over HTTPS
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_max_hours: int = Field(default=12, ge=1, le=7 * 24)
    lockout_failures: int = Field(default=5, ge=1, le=100)
    lockout_minutes: int = Field(default=15, ge=1, le=24 * 60)
    access_log_retention_days: int = Field(default=180, ge=180)  # level 3: >= 6 months
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    sse_per_user: int = Field(default=4, ge=1)
    sse_total: int = Field(default=100, ge=1)
    lookup_per_client_per_minute: int = Field(default=10, ge=1)
    lookup_failures_per_case_per_hour: int = Field(default=10, ge=1)
    search_per_user_per_minute: int = Field(default=30, ge=1)

    # OpenID Connect (counter/oidc.py, docs/oidc.md): the city's identity provider, off
    # while oidc_issuer is None. The client secret comes from the environment or the
    # file, never a default; oidc_audience (default: the client id) is what API clients'
    # access tokens must carry in `aud`; oidc_roles_claim is a claim name or dotted path,
    # oidc_window_claim too (the counter window a clerk works at: the home page's cases).
    oidc_issuer: str | None = None
    oidc_client_id: str = "onewindow-counter"
    oidc_client_secret: SecretStr | None = None
    oidc_client_secret_file: Path | None = None
    oidc_audience: str | None = None
    oidc_roles_claim: str = "roles"
    oidc_window_claim: str = "window_id"

    # The HTTP ingestion gateway (gateway/, docs/gateway.md). The body limit is checked as
    # the body streams in; a batch holds at most 500 events (interfaces.md) whatever its
    # size. Each department gets a token bucket of events: gateway_events_per_second,
    # bursts up to gateway_burst_events (at least one full batch). A request waits at most
    # gateway_ack_timeout_seconds for the broker's acknowledgements, then 503. Answers to
    # accepted events are kept for retries: at most gateway_answer_cache_size events, each
    # for gateway_answer_cache_seconds. A material upload's file is at most
    # gateway_max_file_bytes, checked as it streams in (a PDF is spooled to
    # <data_dir>/gateway-uploads for its page count, then deleted). The events of large
    # requests are checked in gateway_check_processes worker processes (0: a thread).
    gateway_port: int = Field(default=8001, ge=1, le=65535)
    gateway_max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=64 * 1024)
    gateway_max_file_bytes: int = Field(default=200 * 1024 * 1024, ge=64 * 1024)
    gateway_check_processes: int = Field(default=1, ge=0, le=64)
    gateway_events_per_second: float = Field(default=2000.0, gt=0)
    gateway_burst_events: int = Field(default=10_000, ge=500)
    gateway_ack_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    gateway_answer_cache_size: int = Field(default=100_000, ge=1000)
    gateway_answer_cache_seconds: float = Field(default=3600.0, ge=60)
    gateway_tls_cert_file: Path | None = None
    gateway_tls_key_file: Path | None = None

    # The simulator (`onewindow simulate`, `onewindow up --simulate`: producers/simulator.py,
    # docs/operations.md "The demo"); its command-line options win. Compression: simulated
    # seconds per wall-clock second, counted in the service centre's opening hours (a
    # working day's 7 hours in 84 s at 300) unless simulate_around_the_clock.
    simulate_compression: float = Field(default=300.0, gt=0)
    simulate_around_the_clock: bool = False

    log_json: bool = False
    log_level: str = "INFO"

    @field_validator("topic_prefix")
    @classmethod
    def _usable_topic_prefix(cls, value: str) -> str:
        """A prefix Kafka can name topics with (`onewindow.topics.prefix_problem`): from
        the environment, ``n c/`` passed to a worker or to provision ended in the
        broker's error on the first topic; the command-line flag was checked already."""
        problem = prefix_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _known_log_level(cls, value: object) -> str:
        """One of `LOG_LEVELS`, any case, kept in capitals: an unknown level was read as
        INFO without a word, so a typo silenced the DEBUG lines someone asked for."""
        level = str(value).strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"one of {', '.join(LOG_LEVELS)} (any case), not {value!r}")
        return level

    @model_validator(mode="after")
    def _bootstrap_follows_port(self) -> Settings:
        """Unless the bootstrap is set, it is the local broker on `kafka_port`, so
        `ONEWINDOW_KAFKA_PORT=29092` moves `onewindow up`'s broker and every other
        command alike."""
        if "kafka_bootstrap" not in self.model_fields_set:
            self.kafka_bootstrap = f"127.0.0.1:{self.kafka_port}"
        return self


def secret_value(value: SecretStr | None, file: Path | None, file_variable: str) -> str | None:
    """A secret setting: its value, else the content of its file (surrounding white space
    dropped), else None. Raises ConfigError naming ``file_variable`` and the file when it
    cannot be read or is not UTF-8 text (one line, for the CLI)."""
    if value is not None:
        return value.get_secret_value()
    if file is None:
        return None
    try:
        return Path(file).read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"{file_variable} {file}: {reason}") from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment.

    Raises ConfigError (a command exits 2 with it, one line) naming every ONEWINDOW_*
    variable whose value is refused and why, instead of pydantic's traceback."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            field = ".".join(str(part) for part in err.get("loc", ()) if part != "__root__")
            name = f"ONEWINDOW_{field.upper()}" if field else "the ONEWINDOW_* settings"
            msg = str(err.get("msg", "refused")).removeprefix("Value error, ")
            problems.append(f"{name}: {msg}")
        raise ConfigError("; ".join(problems)) from None
