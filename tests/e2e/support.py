"""The real stack for browser tests and screenshots: topics under a prefix, the case-state
worker (and optionally the materials worker), the sink and the counter app as processes,
SQLite in a temporary directory; and headless Debian chromium driven by Playwright (the
system browser: nothing downloads one).

The counter app requires a signed-in user: ``Stack.add_user`` creates one through
``onewindow users add ... --password-stdin`` (the stack's own environment), the stack's
HTTP helpers (``Stack.get``, ``Stack.case``) send the API token of a user it makes on
start (``onewindow users token``), and ``sign_in`` signs a browser page in through the
login page, as a person would. ``Stack.simulate`` feeds it the demo's traffic (`onewindow
simulate`, compressed; ``Stack.simulator`` starts it beside the stack's own start) and
``Stack.wait_drained`` waits until all of it is in the model."""

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
from onewindow.departments import load_registry
from onewindow.kafka_local import free_port
from onewindow.read_model.engine import make_engine
from onewindow.topics import Topics
from tests.integration.streams import (
    ID_KEY,
    start_materials_worker,
    start_worker,
    stop,
    wait_caught_up,
    wait_stream_apps_caught_up,
    worker_env,
)
from tests.integration.test_read_model import _wait_sink_caught_up as wait_sink_caught_up

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
        self.simulators: list[subprocess.Popen[bytes]] = []  # stopped with the stack
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
                 display_name: str | None = None, window: str | None = None) -> None:
        """A local user (`onewindow users add NAME --role R ... [--window W]
        --password-stdin`)."""
        args = ["users", "add", username]
        for role in roles:
            args += ["--role", role]
        if display_name:
            args += ["--display-name", display_name]
        if window:
            args += ["--window", window]
        self.cli(*args, "--password-stdin", stdin=password + "\n")

    def simulator(self, *, backlog_hours: float, compression: float, rate: float,
                  duration: float | None = None, invalid_rate: float = 0.01,
                  seed: int = 2026) -> subprocess.Popen[bytes]:
        """Start `onewindow simulate` into the stack (log in ``simulate.log``), the traffic
        `make run` shows (docs/operations.md, *The demo*): the simulated clock starts
        `backlog_hours` of the service centre's open time back and runs `compression`
        times the wall clock (open seconds per second) up to now, at most `rate` events/s,
        `invalid_rate` of them spoiled (dead letters). It stops after `duration`
        wall-clock seconds (default: the replay's `backlog_hours * 3600 / compression`
        and 2 s) with everything sent flushed. The topics need not have a reader yet: the
        workers read them from the start."""
        if duration is None:
            duration = backlog_hours * 3600 / compression + 2
        log = open(self.tmp / "simulate.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "onewindow_cli", "simulate", "--rate", f"{rate:g}",
             "--compression", f"{compression:g}", "--backlog-hours", f"{backlog_hours:g}",
             "--invalid-rate", f"{invalid_rate:g}", "--seed", str(seed),
             "--duration", f"{duration:g}"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.simulators.append(proc)
        return proc

    def finish_simulator(self, proc: subprocess.Popen[bytes], timeout: float = 180) -> str:
        """Wait for a `simulator` to end (exit 0); what it printed (the last line: the
        counts sent)."""
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            stop(proc)
            raise AssertionError(f"onewindow simulate still running after {timeout}s:\n"
                                 f"{self.log('simulate')}") from None
        assert code == 0, f"onewindow simulate exited {code}:\n{self.log('simulate')}"
        return (self.tmp / "simulate.log").read_text(errors="replace")

    def simulate(self, **options: Any) -> str:
        """`simulator(**options)` run to its end; what it printed."""
        return self.finish_simulator(self.simulator(**options))

    def wait_drained(self, timeout: float = 120) -> None:
        """Everything published so far is in the read model: the stream apps' groups
        committed to the end of their input topics (`timeout` seconds each), then the
        sink's stored offsets at the end of the output topics (120 s)."""
        procs = list(self.procs.values())
        if self.materials:
            wait_stream_apps_caught_up(self.kafka, self.topics, procs, timeout=timeout)
        else:
            wait_caught_up(self.kafka, self.topics.case_state_app,
                           self.topics.inputs(load_registry().codes), timeout, procs)
        engine = make_engine(self.db_url)
        try:
            wait_sink_caught_up(self.kafka, self.topics, engine, procs=tuple(procs))
        finally:
            engine.dispose()

    def get(self, path: str, **params: Any) -> httpx.Response:
        """GET a path of the counter app with the stack's API token."""
        return httpx.get(f"{self.base}{path}", params=params or None, timeout=30,
                         headers={"Authorization": f"Bearer {self.token}"})

    def stop(self) -> None:
        """SIGTERM every process at once, then wait for each (30 s, then SIGKILL)."""
        procs = [*self.simulators, *reversed(self.procs.values())]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

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
