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
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
from pydantic import SecretStr

from onewindow.config import Settings
from onewindow.read_model.engine import make_engine
from onewindow.topics import Topics
from sinks.migrations import upgrade
from tests.integration.server_support import clean_env, log_tail, serving
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
        return log_tail(self.log)


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


@contextmanager
def running_counter(kc: LocalKeycloak, tmp: Path, timeout: float = 60) -> Iterator[OidcCounter]:
    """The counter app on a free port of 127.0.0.1 over the example's read model, once
    ``/healthz`` answers 200; stopped (SIGTERM) afterwards. None of the caller's own
    ONEWINDOW_* settings."""
    db_url = f"sqlite:///{tmp / 'model.db'}"
    load_example(db_url)
    env = clean_env(DATA_DIR=str(tmp / "data"), DATABASE_URL=db_url, ID_HASH_KEY=ID_KEY,
                    OIDC_ISSUER=kc.issuer, OIDC_CLIENT_ID=COUNTER_CLIENT,
                    OIDC_CLIENT_SECRET=COUNTER_SECRET)
    log = tmp / "counter.log"
    with serving("counter", env, log, timeout=timeout) as (base, proc):
        yield OidcCounter(base=base, db_url=db_url, issuer=kc.issuer, proc=proc, log=log)


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
