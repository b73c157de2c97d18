"""A real Keycloak for the OpenID Connect tests (counter/oidc.py), never a mock.

The distribution (`org.keycloak:keycloak-quarkus-dist`, a tar.gz on Maven Central) is
fetched with Maven once into the per-user cache (`Settings.cache_dir`), like the Kafka
jars (onewindow/kafka_local.py), unpacked there and warmed up once: Keycloak's first
start re-augments its Quarkus build for the build-time options (about 30 s on two cores)
and keeps the result, so every later start with the same `BUILD_OPTIONS` skips it. A
lock file serialises concurrent fetches; a `.complete` marker written last means a
killed fetch starts again.

Each test session gets its own Keycloak home in a temporary directory: small copies of
`bin/kc.sh`, `conf/` and the augmented `lib/quarkus`, symlinks to the read-only rest of
the cached distribution, and `data/import/` holding the realm file of the repository
(tests/fixtures/keycloak/onewindow-realm.json). Keycloak runs in dev mode on 127.0.0.1
only, with its database in memory, health and metrics off.

Keycloak 26 needs Java 21 or newer (Debian 12's default is 17): ONEWINDOW_KEYCLOAK_JAVA_HOME,
else the newest JDK under /usr/lib/jvm of at least that version.

    python -m tests.keycloak_support fetch      download, unpack and warm up (make keycloak)
    python -m tests.keycloak_support run        start one and wait (manual checks)
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from onewindow.config import get_settings
from onewindow.kafka_local import free_port

#: the one place the Keycloak version is named (Makefile, fixture and docs read it here)
KEYCLOAK_VERSION = "26.7.3"
ARTIFACT = "org.keycloak:keycloak-quarkus-dist:{version}:tar.gz"
MIN_JAVA = 21
JAVA_HOME_ENV = "ONEWINDOW_KEYCLOAK_JAVA_HOME"
JVM_ROOT = Path("/usr/lib/jvm")

REALM = "onewindow"
REALM_FILE = Path(__file__).resolve().parent / "fixtures" / "keycloak" / "onewindow-realm.json"
COUNTER_CLIENT = "onewindow-counter"  # confidential, authorization code + PKCE S256
COUNTER_SECRET = "onewindow-counter-test-secret"  # noqa: S105 - the test realm's, nowhere else
TOKEN_CLIENT = "onewindow-tests"  # public, password grant, tokens for aud onewindow-counter
ELSEWHERE_CLIENT = "onewindow-elsewhere"  # public, password grant, aud another-service
#: the realm's test users and the realm roles each holds
USERS: dict[str, frozenset[str]] = {
    "clerk1": frozenset({"clerk"}),
    "super1": frozenset({"supervisor"}),
    "audit1": frozenset({"auditor"}),
    "ops1": frozenset({"ops", "library-staff"}),  # library-staff: not onewindow's, dropped
    "multi1": frozenset({"clerk", "ops"}),
    "norole1": frozenset(),
}

#: Build-time options: Quarkus re-augments when they change, so the warm-up and every
#: start pass exactly these. Runtime options (host, port, import) go beside them.
BUILD_OPTIONS = ("--db=dev-mem", "--health-enabled=false", "--metrics-enabled=false")
#: C1 only: a shorter start-up on two cores, and tests never run long enough for C2
JAVA_OPTS_APPEND = "-XX:TieredStopAtLevel=1 -Djava.awt.headless=true"


class KeycloakError(RuntimeError):
    """Keycloak could not be found, fetched or started (the fixture fails with it)."""


def password_of(username: str) -> str:
    """The test realm's password of `username`."""
    return f"{username}-password"


# --------------------------------------------------------------------------------- Java


def java_major(home: Path) -> int | None:
    """The major version of the JDK/JRE at `home` (from its `release` file), else None."""
    try:
        text = (home / "release").read_text()
    except OSError:
        return None
    m = re.search(r'^JAVA_VERSION="(\d+)(?:\.(\d+))?', text, re.MULTILINE)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


def find_java_home(env: Mapping[str, str] = os.environ, jvm_root: Path = JVM_ROOT) -> Path:
    """ONEWINDOW_KEYCLOAK_JAVA_HOME, else the newest JDK under `jvm_root` with a major
    version of at least MIN_JAVA; KeycloakError naming what to do when there is none."""
    named = env.get(JAVA_HOME_ENV)
    if named:
        home = Path(named)
        major = java_major(home)
        if not (home / "bin" / "java").exists() or major is None or major < MIN_JAVA:
            raise KeycloakError(f"{JAVA_HOME_ENV}={named} is not a Java {MIN_JAVA}+ home "
                                f"(found major version {major}); Keycloak {KEYCLOAK_VERSION} "
                                f"needs one")
        return home
    found: dict[Path, int] = {}
    for home in sorted(jvm_root.glob("*")) if jvm_root.is_dir() else []:
        major = java_major(home)
        if major is not None and major >= MIN_JAVA and (home / "bin" / "java").exists():
            found.setdefault(home.resolve(), major)
    if not found:
        raise KeycloakError(f"Keycloak {KEYCLOAK_VERSION} needs Java {MIN_JAVA} or newer and "
                            f"none is under {jvm_root} (Debian 12's default is 17): install "
                            f"one (e.g. Temurin 21 or 25) or set {JAVA_HOME_ENV} to its home")
    return max(found, key=lambda h: (found[h], h.name))


# ------------------------------------------------------------------------ distribution


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (created): one fetch at a time per machine and user."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _child_env(java_home: Path) -> dict[str, str]:
    """The environment Keycloak runs in: no KC_*/QUARKUS_* or JAVA_OPTS of the caller
    (they would change the build options and force a re-augmentation)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KC_", "QUARKUS_", "JAVA_OPTS", "JAVA_ADD_OPENS"))}
    env.update(JAVA_HOME=str(java_home), JAVA_OPTS_APPEND=JAVA_OPTS_APPEND)
    return env


def cached_stats(cache_dir: Path, version: str = KEYCLOAK_VERSION) -> dict[str, Any]:
    """What the fetch measured (bytes, seconds) and the build options the cached
    distribution is augmented for, from the cache's `.complete` marker."""
    marker = Path(cache_dir).resolve() / f"keycloak-{version}" / ".complete"
    try:
        return dict(json.loads(marker.read_text()))
    except (OSError, ValueError):
        return {}


def _lock_file(cache_dir: Path, version: str) -> Path:
    return Path(cache_dir).resolve() / f"keycloak-{version}.lock"


def ensure_keycloak(cache_dir: Path, version: str = KEYCLOAK_VERSION,
                    java_home: Path | None = None) -> Path:
    """The unpacked distribution in the cache, augmented for BUILD_OPTIONS: fetched with
    Maven only once, warmed up again only when BUILD_OPTIONS change."""
    root = Path(cache_dir).resolve() / f"keycloak-{version}"
    dist, marker = root / "dist", root / ".complete"
    if cached_stats(cache_dir, version).get("build_options") == list(BUILD_OPTIONS):
        return dist
    java_home = java_home or find_java_home()
    root.mkdir(parents=True, exist_ok=True)
    with _locked(_lock_file(cache_dir, version)):
        stats = cached_stats(cache_dir, version)
        if stats.get("build_options") == list(BUILD_OPTIONS):
            return dist  # another process did it while this one waited
        if not stats:
            stats = _download(version, root, dist)
        t0 = time.monotonic()
        _warm_up(dist, java_home, root / "warm-up.log")
        stats.update(warm_up_seconds=round(time.monotonic() - t0, 1),
                     build_options=list(BUILD_OPTIONS))
        tmp = root / ".complete.partial"
        tmp.write_text(json.dumps(stats) + "\n")
        tmp.rename(marker)
    return dist


def _download(version: str, root: Path, dist: Path) -> dict[str, Any]:
    """Fetch the tar.gz with Maven and unpack it to `dist` (under the caller's lock)."""
    if shutil.which("mvn") is None:
        raise KeycloakError("Maven (mvn) is needed once to fetch Keycloak; install it")
    download, unpacked = root / "download.partial", root / "dist.partial"
    for d in (download, unpacked, dist):
        shutil.rmtree(d, ignore_errors=True)
    t0 = time.monotonic()
    cmd = ["mvn", "-q", "-B", "dependency:copy",
           f"-Dartifact={ARTIFACT.format(version=version)}", f"-DoutputDirectory={download}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        raise KeycloakError(f"fetching Keycloak {version} failed: {' | '.join(tail)}")
    archive = download / f"keycloak-quarkus-dist-{version}.tar.gz"
    stats: dict[str, Any] = {"version": version, "download_bytes": archive.stat().st_size,
                             "download_seconds": round(time.monotonic() - t0, 1)}
    t0 = time.monotonic()
    with tarfile.open(archive) as tar:
        tar.extractall(unpacked, filter="data")  # nothing outside, no device files
    (unpacked / f"keycloak-{version}").rename(dist)
    shutil.rmtree(unpacked)
    shutil.rmtree(download)
    stats["unpack_seconds"] = round(time.monotonic() - t0, 1)
    return stats


def _warm_up(dist: Path, java_home: Path, log: Path) -> None:
    """Start the cached distribution once with BUILD_OPTIONS, so its Quarkus build is
    augmented for them, and stop it as soon as it answers."""
    kc = _Process(home=dist, java_home=java_home, port=free_port(), log=log)
    try:
        kc.start(extra=(), ready_path="/realms/master/.well-known/openid-configuration",
                 timeout=600)
    finally:
        kc.stop()
    shutil.rmtree(dist / "data", ignore_errors=True)


def _session_home(dist: Path, home: Path, realm_file: Path) -> None:
    """A Keycloak home of its own: what Keycloak writes is copied, the rest linked."""
    (home / "bin").mkdir(parents=True)
    shutil.copy2(dist / "bin" / "kc.sh", home / "bin" / "kc.sh")  # its home is its ..
    shutil.copytree(dist / "conf", home / "conf", symlinks=True)
    (home / "lib").mkdir()
    for name in ("app", "quarkus"):
        shutil.copytree(dist / "lib" / name, home / "lib" / name)
    shutil.copy2(dist / "lib" / "quarkus-run.jar", home / "lib" / "quarkus-run.jar")
    (home / "lib" / "lib").symlink_to(dist / "lib" / "lib", target_is_directory=True)
    for name in ("themes", "providers"):
        (home / name).symlink_to(dist / name, target_is_directory=True)
    (home / "data" / "import").mkdir(parents=True)
    shutil.copy2(realm_file, home / "data" / "import" / realm_file.name)


# ------------------------------------------------------------------------------ process


@dataclass
class _Process:
    home: Path
    java_home: Path
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, extra: tuple[str, ...], ready_path: str, timeout: float) -> None:
        cmd = [str(self.home / "bin" / "kc.sh"), "start-dev", *BUILD_OPTIONS,
               "--http-host=127.0.0.1", f"--http-port={self.port}", *extra]
        out = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.home,
                                         env=_child_env(self.java_home), start_new_session=True)
        finally:
            os.close(out)
        url = f"http://127.0.0.1:{self.port}{ready_path}"
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=5) as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise KeycloakError(f"Keycloak exited with {self.proc.returncode}: "
                                        f"{self._tail()}")
                try:
                    if http.get(url).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.5)
        self.stop()
        raise KeycloakError(f"Keycloak did not answer {url} within {timeout:.0f}s: "
                            f"{self._tail()}")

    def _tail(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(ln for ln in lines if not ln.lstrip().startswith("at "))[-1500:]

    def stop(self, timeout: float = 30.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)  # kc.sh forwards it to the JVM
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@dataclass
class LocalKeycloak:
    """One Keycloak in dev mode on 127.0.0.1 with the `onewindow` realm imported."""

    work_dir: Path
    cache_dir: Path = field(default_factory=lambda: get_settings().cache_dir)
    version: str = KEYCLOAK_VERSION
    java_home: Path | None = None
    port: int = 0
    realm_file: Path = REALM_FILE
    #: seconds from launching kc.sh until the realm's discovery document answered
    startup_seconds: float | None = None
    _process: _Process | None = field(default=None, init=False, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/realms/{REALM}"

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/token"

    @property
    def log_file(self) -> Path:
        return Path(self.work_dir) / "keycloak.log"

    def start(self, timeout: float = 300.0) -> LocalKeycloak:
        java_home = self.java_home or find_java_home()
        dist = ensure_keycloak(self.cache_dir, self.version, java_home)
        self.work_dir = Path(self.work_dir).resolve()
        home = self.work_dir / "home"
        shutil.rmtree(home, ignore_errors=True)
        with _locked(_lock_file(self.cache_dir, self.version)):  # never during a warm-up
            _session_home(dist, home, self.realm_file)
        self.port = self.port or free_port()
        self._process = _Process(home=home, java_home=java_home, port=self.port,
                                 log=self.log_file)
        t0 = time.monotonic()
        self._process.start(extra=("--import-realm",),
                            ready_path=f"/realms/{REALM}/.well-known/openid-configuration",
                            timeout=timeout)
        self.startup_seconds = round(time.monotonic() - t0, 1)
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None

    def __enter__(self) -> LocalKeycloak:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def password_token(self, username: str, password: str | None = None,
                       client_id: str = TOKEN_CLIENT, scope: str = "openid") -> dict[str, Any]:
        """The token response of the password grant (direct access) for a test user."""
        resp = httpx.post(self.token_endpoint, timeout=30, data={
            "grant_type": "password", "client_id": client_id, "username": username,
            "password": password if password is not None else password_of(username),
            "scope": scope})
        if resp.status_code != 200:
            raise KeycloakError(f"password grant for {username} via {client_id}: "
                                f"{resp.status_code} {resp.text[:200]}")
        return dict(resp.json())

    def access_token(self, username: str, client_id: str = TOKEN_CLIENT) -> str:
        return str(self.password_token(username, client_id=client_id)["access_token"])


# ---------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.keycloak_support")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="download, unpack and warm up the distribution (once)")
    run = sub.add_parser("run", help="start one with the test realm and wait for Ctrl-C")
    run.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    cache = get_settings().cache_dir
    try:
        if args.command == "fetch":
            t0 = time.monotonic()
            dist = ensure_keycloak(cache)
            print(f"Keycloak {KEYCLOAK_VERSION}: {dist} ({time.monotonic() - t0:.1f}s; "
                  f"first fetch: {cached_stats(cache)})")
            return 0
        stop = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop)
        with tempfile.TemporaryDirectory(prefix="onewindow-keycloak-") as work, \
                LocalKeycloak(work_dir=Path(work), cache_dir=cache, port=args.port) as kc:
            print(f"Keycloak {KEYCLOAK_VERSION} up in {kc.startup_seconds}s: issuer "
                  f"{kc.issuer} (log {kc.log_file}); Ctrl-C stops it", flush=True)
            signal.sigwait(stop)
    except KeycloakError as exc:
        print(f"keycloak: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
