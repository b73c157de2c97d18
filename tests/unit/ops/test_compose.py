"""docker-compose.yml and the Dockerfile, checked without a Docker engine: the file
parses, images and build contexts exist, every mounted file is in the repository, and
ports, commands and environment variables agree with the code's configuration."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from onewindow.config import Settings
from onewindow.security.id_key import DEV_KEY
from onewindow_cli.cli import build_parser
from tests import REPO_ROOT

COMPOSE = REPO_ROOT / "docker-compose.yml"
PROM_COMPOSE = REPO_ROOT / "ops" / "prometheus" / "prometheus.compose.yml"
ONEWINDOW_SERVICES = ("provision", "worker", "materials-worker", "sink", "counter", "gateway")
#: the Settings field that holds each scraped service's port
PORT_FIELD = {"worker": "worker_web_port", "materials-worker": "materials_web_port",
              "sink": "sink_metrics_port", "counter": "counter_port",
              "gateway": "gateway_port"}
VAR = re.compile(r"\$\{([A-Z0-9_]+)(?:(:?[-?])([^}]*))?\}")
SECRETS = {"ONEWINDOW_DB_PASSWORD": "pw", "GRAFANA_ADMIN_PASSWORD": "pw"}
#: the services that hash ID numbers, so need the ID hash key (a compose secret)
HASHING = ("worker", "materials-worker", "sink", "counter")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} interpolation."""
    def sub(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if env.get(name):
            return env[name]
        if op and op.endswith("?"):
            raise KeyError(f"{name}: {arg}")
        return arg if op and op.endswith("-") else ""
    return VAR.sub(sub, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def env_of(service: dict[str, Any], extra: dict[str, str] | None = None) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: interpolate(str(v), extra if extra is not None else SECRETS)
            for k, v in env.items()}


def test_every_part_of_the_stack_is_there(services: dict[str, Any]) -> None:
    assert {"kafka", "postgres", "worker", "materials-worker", "sink", "counter",
            "gateway", "prometheus", "grafana"} <= set(services)
    assert re.fullmatch(r"apache/kafka:3\.9\.\d+", services["kafka"]["image"])
    kafka = services["kafka"]
    assert kafka["entrypoint"] == ["/bin/bash", "/etc/onewindow/start-secured.sh"]
    assert "./ops/kafka/start-secured.sh:/etc/onewindow/start-secured.sh:ro" in kafka["volumes"]
    script = (REPO_ROOT / "ops" / "kafka" / "start-secured.sh").read_text()
    assert "process.roles=broker,controller" in script  # KRaft, no ZooKeeper
    assert "zookeeper" not in COMPOSE.read_text().lower()


def test_images_and_build_contexts_exist(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        assert "image" in svc or "build" in svc, name
        if "build" in svc:
            build = svc["build"]
            context = REPO_ROOT / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = context / ("Dockerfile" if isinstance(build, str)
                                    else build.get("dockerfile", "Dockerfile"))
            assert dockerfile.is_file(), name


def test_dockerfile_installs_the_project_from_files_that_exist() -> None:
    text = (REPO_ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    for line in re.findall(r"^COPY (.+)$", text, re.M):
        *sources, _dest = line.split()
        for src in sources:
            assert (REPO_ROOT / src).exists(), src
    assert "pip install" in text and "[postgres]" in text
    assert re.search(r'^ENTRYPOINT \["onewindow"\]', text, re.M)


def test_every_mounted_file_exists(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
            if src.startswith("."):
                assert (REPO_ROOT / src).exists(), f"{name}: {src}"
            elif src.startswith("/"):  # the operator's secrets on the host, never the repo
                assert src.startswith("/etc/onewindow/"), f"{name}: {src}"


def test_prometheus_and_grafana_get_their_config(services: dict[str, Any]) -> None:
    mounts = {v.split(":")[1]: v.split(":")[0] for v in services["prometheus"]["volumes"]}
    assert mounts["/etc/prometheus/prometheus.yml"] == "./ops/prometheus/prometheus.compose.yml"
    prom = yaml.safe_load(PROM_COMPOSE.read_text())
    for rule_file in prom["rule_files"]:  # relative to the config file's directory
        assert f"/etc/prometheus/{rule_file}" in mounts
    gmounts = {v.split(":")[1]: v.split(":")[0] for v in services["grafana"]["volumes"]}
    assert gmounts["/etc/grafana/provisioning"] == "./ops/grafana/provisioning"
    assert gmounts["/var/lib/grafana/dashboards"] == "./ops/grafana/dashboards"


def test_scrape_targets_match_the_services_ports(services: dict[str, Any]) -> None:
    prom = yaml.safe_load(PROM_COMPOSE.read_text())
    seen = set()
    for job in prom["scrape_configs"]:
        targets: list[tuple[str, int]] = []
        for sc in job.get("static_configs", []):
            targets += [(t.rsplit(":", 1)[0], int(t.rsplit(":", 1)[1])) for t in sc["targets"]]
        for sd in job.get("dns_sd_configs", []):
            targets += [(n, int(sd["port"])) for n in sd["names"]]
        for host, port in targets:
            if host == "localhost":
                continue
            assert host in services, (job["job_name"], host)
            settings = Settings(**_settings_kwargs(env_of(services[host])))
            assert port == getattr(settings, PORT_FIELD[host]), (host, port)
            assert settings.metrics_host == "0.0.0.0" or host in ("counter", "gateway")
            seen.add(host)
    assert seen == set(PORT_FIELD)
    counter = services["counter"]
    port = Settings(**_settings_kwargs(env_of(counter))).counter_port
    assert f"{port}:{port}" in counter["ports"]
    assert counter["command"][:3] == ["counter", "--host", "0.0.0.0"]


def _settings_kwargs(env: dict[str, str]) -> dict[str, str]:
    fields = Settings.model_fields
    out = {}
    for key, value in env.items():
        assert key.startswith("ONEWINDOW_"), key
        field = key.removeprefix("ONEWINDOW_").lower()
        assert field in fields, f"{key} is not a Settings field"
        out[field] = value
    return out


@pytest.mark.parametrize("name", ONEWINDOW_SERVICES)
def test_onewindow_services_configure_settings_that_exist(
        services: dict[str, Any], name: str) -> None:
    svc = services[name]
    env = env_of(svc)
    s = Settings(**_settings_kwargs(env))  # types validate (ports, partitions, bools)
    assert s.database_url.startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in s.database_url
    host, port = s.kafka_bootstrap.split(":")
    assert host in services and port == "9092"
    assert env_of(services["kafka"])["KAFKA_ADVERTISED_HOST"] == host
    assert s.kafka_security_protocol == "SASL_PLAINTEXT"
    assert s.log_json is True
    assert s.calendar_override_file is not None
    mounted = {v.split(":")[1] for v in svc.get("volumes", [])}
    assert str(s.calendar_override_file) in mounted


@pytest.mark.parametrize("name", ONEWINDOW_SERVICES)
def test_commands_exist_in_the_cli(services: dict[str, Any], name: str) -> None:

    command = services[name]["command"]
    args = build_parser().parse_args(command)
    assert args.command == command[0]


def test_secrets_are_never_in_the_file(services: dict[str, Any]) -> None:

    text = COMPOSE.read_text()
    assert DEV_KEY not in text and "INSECURE_DEV_KEY" not in text
    for name in ONEWINDOW_SERVICES:
        raw = services[name]["environment"]
        assert "ONEWINDOW_ID_HASH_KEY" not in raw  # never the key itself: its file
        assert "${ONEWINDOW_DB_PASSWORD:?" in raw["ONEWINDOW_DATABASE_URL"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith(
        "${ONEWINDOW_DB_PASSWORD:?")
    assert services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith("${")
    with pytest.raises(KeyError):  # compose refuses to start without the password
        env_of(services["worker"], extra={})


def test_the_id_hash_key_is_a_secret_file_of_every_service_that_hashes(
        compose: dict[str, Any], services: dict[str, Any]) -> None:
    assert compose["secrets"]["id-hash-key"] == {"file": "/etc/onewindow/id-hash.key"}
    for name in HASHING:
        assert "id-hash-key" in services[name]["secrets"], name
        s = Settings(**_settings_kwargs(env_of(services[name])))
        assert s.id_hash_key is None and not s.insecure_dev_key
        assert s.id_hash_key_file == Path("/run/secrets/id-hash-key")
    assert "secrets" not in services["provision"]  # it never hashes


def test_dependencies_name_services(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        deps = svc.get("depends_on", [])
        for dep in deps if isinstance(deps, list) else deps.keys():
            assert dep in services, (name, dep)
    assert services["provision"]["restart"] == "no"


def test_dockerignore_keeps_secrets_and_state_out() -> None:
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    for entry in (".env", ".venv", "var", ".git"):
        assert entry in ignored
    assert Path(REPO_ROOT / "docs" / "operations.md").is_file()


def test_every_kafka_client_signs_in_with_its_own_secret_file(
        compose: dict[str, Any], services: dict[str, Any]) -> None:
    """No Kafka password in the file: each client gets only its own as a compose secret,
    the broker its admin password likewise; provision alone sees the credentials dir."""
    declared = compose["secrets"]
    for secret in (v for k, v in declared.items() if k != "id-hash-key"):
        assert secret["file"].startswith("/etc/onewindow/credentials/")
    assert services["kafka"]["secrets"] == ["kafka-admin"]
    for name, principal in (("worker", "svc-stream"), ("materials-worker", "svc-stream"),
                            ("sink", "svc-sink"), ("gateway", "svc-gateway")):
        env = env_of(services[name])
        assert env["ONEWINDOW_KAFKA_USERNAME"] == principal
        assert env["ONEWINDOW_KAFKA_PASSWORD_FILE"] == f"/run/secrets/{principal}"
        assert services[name]["secrets"] == (
            [principal] if name == "gateway" else [principal, "id-hash-key"])
        assert "ONEWINDOW_KAFKA_PASSWORD" not in env
    env = env_of(services["provision"])
    assert env["ONEWINDOW_KAFKA_CREDENTIALS_DIR"] == "/var/lib/onewindow/credentials"
    assert services["counter"]["secrets"] == ["id-hash-key"]  # never talks to Kafka
