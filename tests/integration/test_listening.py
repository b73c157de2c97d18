"""The counter and the gateway bind their port before they print their URL
(`onewindow.listening`): a port in use is one line and exit status 2, not uvicorn's own
error and exit status 3 under a URL that answers nothing; and the gateway still serves
TLS on the socket it bound. Real processes, real sockets; no broker (the gateway does
not wait for one)."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from onewindow.errors import ConfigError
from onewindow.kafka_local import free_port
from onewindow.listening import listening_socket, shown_address
from tests.integration.counter_oidc_support import ID_KEY
from tests.integration.server_support import clean_env, log_tail
from tests.integration.streams import stop

pytestmark = pytest.mark.integration


def _env(command: str, tmp: Path, **more: str) -> dict[str, str]:
    settings = {"DATABASE_URL": f"sqlite:///{tmp / f'{command}.db'}",
                "DATA_DIR": str(tmp / "data"), **more}
    if command == "counter":
        settings["ID_HASH_KEY"] = ID_KEY
    else:  # no broker: the gateway connects when it can (its requests are 503 meanwhile)
        settings.update(KAFKA_SECURITY_PROTOCOL="PLAINTEXT", KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}")
    return clean_env(**settings)


@pytest.mark.parametrize("command", ["counter", "gateway"])
def test_a_port_in_use_is_one_line_and_exit_2_before_any_url(command: str,
                                                              tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run([sys.executable, "-m", "onewindow_cli", command, "--port",
                              str(port)], env=_env(command, tmp_path), capture_output=True,
                             text=True, timeout=120, check=False)
    assert run.returncode == 2, run.stdout + run.stderr
    assert " on http" not in run.stdout, run.stdout  # no URL printed
    lines = run.stderr.strip().splitlines()
    assert lines[-1] == (f"onewindow {command}: cannot listen on 127.0.0.1:{port}: "
                         "Address already in use"), run.stderr
    assert "Traceback" not in run.stderr


def test_listening_socket_names_the_address_and_the_reason() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port}: Address already in use"):
            listening_socket("127.0.0.1", port)
    with pytest.raises(ConfigError, match="cannot listen on no-such-host.invalid:"):
        listening_socket("no-such-host.invalid", 8080)
    with listening_socket("127.0.0.1", 0) as first:  # a free port
        # a second server starting at the same moment: refused here, not in uvicorn
        # (two SO_REUSEADDR sockets may both bind a port until one listens)
        port = first.getsockname()[1]
        with pytest.raises(ConfigError, match="Address already in use"):
            listening_socket("127.0.0.1", port)
    assert shown_address("::1", 8000) == "[::1]:8000"
    assert shown_address("127.0.0.1", 8000) == "127.0.0.1:8000"


def test_the_gateway_serves_tls_on_the_socket_it_bound(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed to make the test's certificate"
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    port = free_port()
    log = tmp_path / "gateway.log"
    env = _env("gateway", tmp_path, GATEWAY_TLS_CERT_FILE=str(cert),
               GATEWAY_TLS_KEY_FILE=str(key))
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "onewindow_cli", "gateway", "--port",
                                 str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log_tail(log)
            assert time.monotonic() < deadline, log_tail(log)
            try:
                r = httpx.get(f"https://127.0.0.1:{port}/openapi.json", timeout=2,
                              verify=ssl.create_default_context(cafile=str(cert)))
                break
            except httpx.ConnectError:
                time.sleep(0.2)
        assert r.status_code == 200 and r.json()["openapi"], r.text
        assert f"ingestion gateway on https://127.0.0.1:{port}/docs" in log_tail(log)
        with pytest.raises(httpx.HTTPError):  # TLS only: plain HTTP gets no answer
            httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5)
    finally:
        stop(proc)
