"""The real stack for browser tests and screenshots: topics under a prefix, the case-state
worker (and optionally the materials worker), the sink and the counter app as processes,
SQLite in a temporary directory; and headless Debian chromium driven by Playwright (the
system browser: nothing downloads one).

The counter app requires a signed-in user: ``Stack.add_user`` creates one through
``onewindow users add ... --password-stdin`` (the stack's own environment), the stack's
HTTP helpers (``Stack.get``, ``Stack.case``) send the API token of a user it makes on
start (``onewindow users token``), and ``sign_in`` signs a browser page in through the
login page, as a person would."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from onewindow.codec import to_json
from onewindow.kafka_local import free_port
from onewindow.topics import Topics
from tests.integration.streams import (
    ID_KEY,
    start_materials_worker,
    start_worker,
    stop,
    worker_env,
)

KEY = ID_KEY  # the workers' key (worker_env): the sink and the counter must share it
#: the user behind the stack's own HTTP helpers (an API token, no browser session)
API_USER = "e2e-api"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Stack:
    """The processes behind the counter app on one broker, one topic prefix, one database."""

    def __init__(self, kafka: str, topics: Topics, tmp: Path, *, materials: bool = False
                 ) -> None:
        self.kafka, self.topics, self.tmp = kafka, topics, tmp
        self.db_url = f"sqlite:///{tmp / 'model.db'}"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = dict(worker_env(kafka, topics, tmp), ONEWINDOW_DATABASE_URL=self.db_url,
                        ONEWINDOW_ID_HASH_KEY=KEY)
        self.materials = materials
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.token = ""  # the API token of API_USER, once started

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        p = subprocess.Popen([sys.executable, "-m", "onewindow_cli", *args], env=self.env,
                             stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = p
        return p

    def start(self) -> Stack:
        self.procs["worker"] = start_worker(self.kafka, self.topics, self.tmp)
        if self.materials:
            self.procs["materials"] = start_materials_worker(self.kafka, self.topics, self.tmp)
        self._spawn("sink", "sink", "--metrics-port", str(free_port()))
        self._spawn("counter", "counter", "--port", str(self.port))
        self.wait(lambda: httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200,
                  "the counter app to read the model")
        self.add_user(API_USER, ["clerk", "supervisor"], "Api-user-pass-2025!")
        out = self.cli("users", "token", API_USER, "--label", "e2e")
        self.token = next(w for w in out.split() if w.startswith("owt_"))
        return self

    def cli(self, *args: str, stdin: str | None = None) -> str:
        """`onewindow ARGS` with the stack's environment; its standard output."""
        r = subprocess.run([sys.executable, "-m", "onewindow_cli", *args], env=self.env,
                           input=stdin, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"onewindow {' '.join(args)}: {r.stderr}"
        return r.stdout

    def add_user(self, username: str, roles: Iterable[str], password: str,
                 display_name: str | None = None) -> None:
        """A local user (`onewindow users add NAME --role R ... --password-stdin`)."""
        args = ["users", "add", username]
        for role in roles:
            args += ["--role", role]
        if display_name:
            args += ["--display-name", display_name]
        self.cli(*args, "--password-stdin", stdin=password + "\n")

    def get(self, path: str, **params: Any) -> httpx.Response:
        """GET a path of the counter app with the stack's API token."""
        return httpx.get(f"{self.base}{path}", params=params or None, timeout=30,
                         headers={"Authorization": f"Bearer {self.token}"})

    def stop(self) -> None:
        for name in reversed(list(self.procs)):
            stop(self.procs[name])

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def wait(self, cond: Any, what: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise AssertionError(f"{what}: {name} exited with {p.returncode}\n"
                                         f"{self.log(name)}")
            try:
                if cond():
                    return
            except (httpx.HTTPError, OSError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}")

    def produce(self, events: Iterable[dict[str, Any]], name: str = "events") -> None:
        """Publish events through `onewindow produce` (a JSON-lines file)."""
        path = self.tmp / f"{name}-{time.monotonic_ns()}.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for e in events:
                f.write(json.dumps(to_json(e), ensure_ascii=False) + "\n")
        r = subprocess.run([sys.executable, "-m", "onewindow_cli", "produce", str(path)],
                           env=self.env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr

    def case(self, case_id: str) -> dict[str, Any] | None:
        r = self.get(f"/api/cases/{case_id}")
        return r.json() if r.status_code == 200 else None

    def wait_version(self, case_id: str, version: int, timeout: float = 60) -> None:
        self.wait(lambda: (self.case(case_id) or {}).get("version", 0) >= version,
                  f"{case_id} at version {version}", timeout)

    def stop_counter(self, timeout: float = 15) -> float:
        """SIGTERM the counter app; seconds it took to exit."""
        p = self.procs["counter"]
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        p.wait(timeout)
        return time.monotonic() - t0


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Debian chromium; yields the Playwright browser. Each user of the tests
    gets a context of their own (``new_context``: cookies and storage apart)."""

    exe = chromium_path()
    assert exe is not None, "chromium is not installed (apt-get install chromium)"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS,
                                     env=dict(os.environ, TZ="Asia/Shanghai"))
        try:
            yield browser
        finally:
            browser.close()


def new_context(browser: Browser, **options: Any) -> BrowserContext:
    """A fresh browser profile (no cookies): Chinese, Beijing time, a desktop screen."""
    defaults: dict[str, Any] = {"locale": "zh-CN", "timezone_id": "Asia/Shanghai",
                                "viewport": {"width": 1366, "height": 900}}
    return browser.new_context(**(defaults | options))


def sign_in(page: Page, base: str, username: str, password: str, *, path: str = "/login",
            timeout: float = 15_000) -> None:
    """Sign in through the login page (opened at ``path`` unless the page is on it) and
    wait until the browser has left it."""
    if "/login" not in page.url:
        page.goto(base + path)
    page.locator("#username").wait_for(timeout=timeout)
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-btn")
    page.wait_for_url(lambda url: "/login" not in url, timeout=timeout)
