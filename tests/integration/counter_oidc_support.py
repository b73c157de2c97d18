"""The counter app as a process (`python -m onewindow_cli counter`) that signs staff in
through a real Keycloak (tests/keycloak_support.py, the `keycloak` fixture), over a read
model filled by the sink's own code (tests/read_model_support.py: no Kafka), for
tests/integration/test_counter_oidc.py and tests/e2e/test_oidc_browser.py.

``browser()`` is an httpx client that keeps cookies as a browser does for
``http://127.0.0.1`` (Keycloak's are ``Secure``, which Python's cookie jar sends over
https only) and follows no redirect; ``code_flow`` drives the authorization-code flow
through the app and Keycloak's own login form with it."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
from pydantic import SecretStr

from onewindow.config import Settings
from onewindow.kafka_local import free_port
from onewindow.read_model.engine import make_engine
from onewindow.topics import Topics
from sinks.migrations import upgrade
from tests.integration.streams import stop
from tests.keycloak_support import COUNTER_CLIENT, COUNTER_SECRET, LocalKeycloak, password_of
from tests.read_model_support import UNIT_TEST_KEY, case_outputs, load_model, read_jsonl

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "restaurant-case.jsonl"
CASE = "GZ20251009000123"  # the case of EXAMPLE
#: the key case_outputs hashes ID numbers with: the sink and the counter must share it
ID_KEY = UNIT_TEST_KEY
LOGIN_FORM = re.compile(r'<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"')


@dataclass
class OidcCounter:
    """A running counter app with OpenID Connect on (``ONEWINDOW_OIDC_*``)."""

    base: str
    db_url: str
    issuer: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def callback(self) -> str:
        return f"{self.base}/auth/oidc/callback"

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def settings_for(db_url: str) -> Settings:
    return Settings(database_url=db_url, topic_prefix="oidc.", id_hash_key=SecretStr(ID_KEY))


def load_example(db_url: str) -> None:
    """The worked example's case in a new read model at ``db_url`` (migrated here)."""
    settings = settings_for(db_url)
    engine = make_engine(db_url, writer=True)
    try:
        upgrade(engine)
        topics = Topics(settings.topic_prefix)
        load_model(engine, topics, case_outputs(read_jsonl(EXAMPLE), topics), settings)
    finally:
        engine.dispose()


def counter_env(kc: LocalKeycloak, tmp: Path, db_url: str) -> dict[str, str]:
    """The process's environment: none of the caller's ONEWINDOW_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEWINDOW_")}
    env.update(ONEWINDOW_DATA_DIR=str(tmp / "data"), ONEWINDOW_DATABASE_URL=db_url,
               ONEWINDOW_ID_HASH_KEY=ID_KEY, ONEWINDOW_OIDC_ISSUER=kc.issuer,
               ONEWINDOW_OIDC_CLIENT_ID=COUNTER_CLIENT,
               ONEWINDOW_OIDC_CLIENT_SECRET=COUNTER_SECRET)
    return env


@contextmanager
def running_counter(kc: LocalKeycloak, tmp: Path, timeout: float = 60) -> Iterator[OidcCounter]:
    """The counter app on a free port of 127.0.0.1 over the example's read model, once
    ``/healthz`` answers 200; stopped (SIGTERM) afterwards."""
    db_url = f"sqlite:///{tmp / 'model.db'}"
    load_example(db_url)
    port = free_port()
    log = tmp / "counter.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "onewindow_cli", "counter", "--port",
                                 str(port)], env=counter_env(kc, tmp, db_url),
                                stdout=out, stderr=subprocess.STDOUT)
    app = OidcCounter(base=f"http://127.0.0.1:{port}", db_url=db_url, issuer=kc.issuer,
                      proc=proc, log=log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert proc.poll() is None, f"the counter exited: {app.log_tail()}"
            assert time.monotonic() < deadline, f"the counter did not start: {app.log_tail()}"
            try:
                if httpx.get(f"{app.base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield app
    finally:
        stop(proc)


def browser() -> httpx.Client:
    """A client that keeps cookies as a browser does on http://127.0.0.1 (one host for
    the app and Keycloak, whatever the port; paths ignored), following no redirect.

    Keycloak's cookies are Secure (browsers send them to http://127.0.0.1, a
    potentially trustworthy origin; Python's jar only over https) and say Version=1,
    which the default policy drops; so the cookies are kept here by hand. A cookie set
    empty or with Max-Age=0 is deleted."""
    jar: dict[str, str] = {}

    def remember(response: httpx.Response) -> None:
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            value, _, attrs = rest.partition(";")
            if not value or re.search(r"(?i)max-age=0\b", attrs):
                jar.pop(name.strip(), None)
            else:
                jar[name.strip()] = value

    def send(request: httpx.Request) -> None:
        if jar:
            request.headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())

    return httpx.Client(timeout=30, follow_redirects=False,
                        event_hooks={"request": [send], "response": [remember]})


@dataclass
class CodeFlow:
    """One sign-in through the app: the provider's URL the app sent the browser to, the
    callback URL Keycloak sent it back with, and the app's answer to it."""

    authorize_url: str
    callback_url: str
    answer: httpx.Response

    @property
    def authorize_params(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.authorize_url).query))

    @property
    def callback_params(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.callback_url).query))


def to_keycloak(b: httpx.Client, app: OidcCounter, next_: str | None = None) -> str:
    """``GET /auth/oidc/login``: the provider's authorization URL it redirects to."""
    r = b.get(f"{app.base}/auth/oidc/login", params={"next": next_} if next_ is not None
              else None)
    assert r.status_code == 302, (r.status_code, r.text[:300])
    url = r.headers["location"]
    assert url.startswith(f"{app.issuer}/protocol/openid-connect/auth?"), url[:120]
    return url


def through_keycloak(b: httpx.Client, authorize_url: str, username: str,
                     password: str | None = None) -> str:
    """Keycloak's login form filled in: the callback URL it redirects to."""
    page = b.get(authorize_url)
    assert page.status_code == 200, page.text[:300]
    m = LOGIN_FORM.search(page.text)
    assert m, "no login form"
    answer = b.post(html.unescape(m.group(1)), data={
        "username": username,
        "password": password if password is not None else password_of(username)})
    assert answer.status_code == 302, answer.text[:300]
    return answer.headers["location"]


def code_flow(b: httpx.Client, app: OidcCounter, username: str,
              next_: str | None = None) -> CodeFlow:
    """The whole sign-in as a browser runs it: the app, Keycloak's form, the callback."""
    authorize = to_keycloak(b, app, next_)
    callback = through_keycloak(b, authorize, username)
    assert callback.startswith(app.callback + "?"), callback[:120]
    return CodeFlow(authorize, callback, b.get(callback))
