"""The supervisor view and the home page in a real browser (issue 16).

The read model holds two weeks of a service centre: cases of producers/scenarios.py up to
now (what would happen later is not there yet, so the latest cases are open), folded by
the case-state step's own code (stream_apps.case_processor, no Kafka: a broker adds
nothing to what this test looks at), with a few records a department got wrong
(dead letters), links by the pure material rules, all written by the sink's own ingest
and unit of work into SQLite. The counter app runs as a process (`onewindow counter`);
headless Debian chromium signs in through the login page.

The supervisor sees every chart drawn with data (each ECharts instance has series with
values), toggles one chart to its table, downloads its CSV (the same rows), and opens a
conflict's case from the list; nothing is fetched from another host and the page logs no
error (a CSP violation would be one). A clerk of window W03 sees today's figures and the
latest cases of W03 on the home page.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page
from pydantic import SecretStr

from counter import staff_migrations
from onewindow.calendar_source import load_calendar
from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.kafka_local import free_port
from onewindow.read_model.engine import make_engine
from onewindow.security.id_protection import IdProtector
from onewindow.staff import users
from onewindow.topics import Topics
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from sinks.migrations import upgrade
from stream_apps.case_processor import CaseProcessor
from stream_apps.records import InRecord
from tests.e2e.page_checks import only_from
from tests.e2e.support import KEY, chromium, new_context, sign_in
from tests.integration.streams import stop
from tests.read_model_support import link_records, load_model

SUPERVISOR = ("super-v", "Super-view-pass-2025")
CLERK = ("clerk-w03", "Clerk-w03-pass-2025")
WINDOW = "W03"
CASES = 120
DAYS = 14
#: the charts of the view (counter/static/supervision.js), each a dataset of the API
CHARTS = ("cases", "sla", "open-cases", "decision-times", "avoidable", "resubmitted",
          "dead-letters")


def _bad_records(topics: Topics, codec: Any, now: datetime) -> list[InRecord]:
    """Records departments got wrong: an applicant ID failing its check digit (zwfw), and
    updates published on another department's topic (swj's system claiming scjgj)."""
    out = []
    for i in range(3):
        e = {"type": "CaseAccepted", "event_id": f"bad-id-{i}", "case_id": f"GZBAD{i:04d}",
             "department": "zwfw", "occurred_at": now - timedelta(hours=i + 1),
             "service_code": "S-BAD", "service_name": "坏数据", "case_kind": "PROMISED",
             "channel": "COUNTER", "window_id": "W01",
             "applicant": {"kind": "PERSON", "id_type": "RESIDENT_ID",
                           "id_number": "440106198503121230", "name": "张三"},
             "promise": {"amount": 5, "unit": "WORKING_DAY"}, "tasks": []}
        out.append(InRecord(topics.input("zwfw"), 0, 900_000 + i, e["case_id"].encode(),
                            codec.encode(e), 1_700_000_000_000))
    for i in range(2):
        e = {"type": "TaskUpdated", "event_id": f"bad-dept-{i}", "case_id": f"GZBADD{i:03d}",
             "department": "scjgj", "occurred_at": now - timedelta(hours=2),
             "task_id": "T", "status": "APPROVED", "officer": None, "note": None}
        out.append(InRecord(topics.input("swj"), 0, 910_000 + i, e["case_id"].encode(),
                            codec.encode(e), 1_700_000_000_000))
    return out


def fill_model(db_url: str, now: datetime) -> None:
    """Two weeks of scenario traffic up to ``now``, and a few bad records, through the
    case-state step and the sink's code into ``db_url``."""
    config = ScenarioConfig(seed=16, start=now - timedelta(days=DAYS),
                            spacing_minutes=DAYS * 1440 / CASES, conflict_rate=0.05)
    events = [e for c in ScenarioGenerator(config).cases(CASES) for e in c
              if e["occurred_at"] <= now]
    topics, codec, registry = Topics("sv."), get_codec(), load_registry()
    proc = CaseProcessor(codec=codec, topics=topics, departments=registry.codes,
                         counters=registry.counter_codes, calendar=load_calendar(),
                         ids=IdProtector(KEY))
    records = [InRecord(topics.input(e["department"]), 0, i, e["case_id"].encode(),
                        codec.encode(e), 1_700_000_000_000 + i) for i, e in enumerate(events)]
    records += _bad_records(topics, codec, now)
    states: dict[str, bytes] = {}
    outputs: list[tuple[str, bytes]] = []
    for i in range(0, len(records), 500):
        res = proc.process(records[i:i + 500], lambda cid, _r: states.get(cid))
        states.update({cid: state for cid, (state, _) in res.states.items()})
        outputs += [(o.topic, o.value) for o in res.outputs]
    outputs += [(topics.material_links, codec.encode_record("MaterialLink", r))
                for r in link_records(events, found_at=now - timedelta(hours=3))]
    engine = make_engine(db_url, writer=True)
    upgrade(engine)
    load_model(engine, topics, outputs,
               Settings(database_url=db_url, id_hash_key=SecretStr(KEY)), batch=2000)
    engine.dispose()


class Counter:
    """`onewindow counter` over a model, with its users."""

    def __init__(self, tmp: Path) -> None:
        self.db_url = f"sqlite:///{tmp / 'model.db'}"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.tmp = tmp
        self.env = {**os.environ, "ONEWINDOW_DATABASE_URL": self.db_url,
                    "ONEWINDOW_ID_HASH_KEY": KEY, "ONEWINDOW_DATA_DIR": str(tmp / "var")}
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str, stdin: str | None = None) -> None:
        r = subprocess.run([sys.executable, "-m", "onewindow_cli", *args], env=self.env,
                           input=stdin, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr

    def start(self) -> None:
        log = open(self.tmp / "counter.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([sys.executable, "-m", "onewindow_cli", "counter",
                                      "--port", str(self.port)], env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.tmp / "counter.log").read_text()
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("the counter app did not answer within 90 s")


@pytest.fixture(scope="module")
def counter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Counter]:
    tmp = tmp_path_factory.mktemp("supervisor")
    c = Counter(tmp)
    fill_model(c.db_url, datetime.now(UTC))
    engine = make_engine(c.db_url, writer=True)
    staff_migrations.upgrade(engine)
    users.add_user(engine, SUPERVISOR[0], ["supervisor"], SUPERVISOR[1], datetime.now(UTC))
    engine.dispose()
    # the clerk's window as an operator gives it
    c.cli("users", "add", CLERK[0], "--role", "clerk", "--window", WINDOW,
          "--password-stdin", stdin=CLERK[1] + "\n")
    c.start()
    try:
        yield c
    finally:
        if c.proc is not None:
            stop(c.proc)


@pytest.fixture(scope="module")
def browser(counter: Counter) -> Iterator[Browser]:
    with chromium() as b:
        yield b


CHART_DATA = """async () => {
  const ec = await import('/static/vendor/echarts/echarts.esm.min.js');
  return [...document.querySelectorAll('.sup-chart')].map((el) => {
    const chart = ec.getInstanceByDom(el);
    const option = chart ? chart.getOption() : null;
    const values = (s) => (s.data || []).map((v) => (v !== null && typeof v === 'object' ? v.value : v));
    return {
      id: el.id,
      series: option ? option.series.map((s) => values(s).length) : [],
      positive: option ? option.series.some((s) => values(s).some((v) => v > 0)) : false,
      canvas: el.querySelector('canvas') ? el.querySelector('canvas').width : 0,
    };
  });
}"""


def _watch(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.on("console", lambda m: errors.append(f"console: {m.text}")
            if m.type == "error" and "401" not in m.text else None)
    return errors


def test_the_supervisor_sees_every_chart_its_table_and_its_csv(counter: Counter,
                                                               browser: Browser) -> None:
    ctx = new_context(browser, accept_downloads=True, viewport={"width": 1400, "height": 1000})
    refused = only_from(ctx, counter.base)
    page = ctx.new_page()
    errors = _watch(page)
    sign_in(page, counter.base, *SUPERVISOR, path="/supervision")
    assert page.url.startswith(f"{counter.base}/supervision")
    page.wait_for_function("() => document.body.dataset.loaded", timeout=30_000)

    charts = {c["id"]: c for c in page.evaluate(CHART_DATA)}
    assert set(charts) == {f"chart-{name}" for name in CHARTS}
    for name, c in charts.items():
        assert c["series"] and all(n > 0 for n in c["series"]), (name, c)
        assert c["positive"] and c["canvas"] > 0, (name, c)

    # one chart to its table: the same rows, then back
    sla_rows = int(page.get_attribute("#card-sla", "data-rows") or "0")
    assert sla_rows >= DAYS
    page.click("#toggle-sla")
    assert page.get_attribute("#card-sla", "data-view") == "table"
    assert page.locator("#chart-sla").is_hidden()
    table = page.locator("#table-sla table tbody tr")
    assert table.count() == sla_rows
    header = page.locator("#table-sla th").all_inner_texts()
    assert header[0] == "日期" and "已超期" in header

    # its CSV: the same table as a file
    with page.expect_download() as dl:
        page.click("#csv-sla")
    download = dl.value
    assert download.suggested_filename.startswith("supervision-sla-")
    text = Path(download.path()).read_bytes().decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0] == ["day", "on_track", "due_soon", "overdue", "paused", "on_time", "late"]
    assert len(lines) == sla_rows + 1
    first = page.locator("#table-sla tbody tr").first.locator("td").all_inner_texts()
    assert first == lines[1]

    # the conflicts: a list an inspector opens case by case
    links = page.locator("#table-conflicts a.case-link")
    assert links.count() > 0
    case_id = links.first.inner_text()
    with ctx.expect_page() as opened:
        links.first.click()
    card = opened.value
    card.locator("#case-status").wait_for(timeout=15_000)
    assert card.locator("#case-id").inner_text() == case_id

    assert refused == [], refused
    assert errors == [], errors
    ctx.close()


def test_the_home_page_shows_today_and_the_latest_cases_of_the_window(
        counter: Counter, browser: Browser) -> None:
    ctx = new_context(browser)
    page = ctx.new_page()
    errors = _watch(page)
    sign_in(page, counter.base, *CLERK)
    page.locator("#home-table").wait_for(timeout=15_000)
    assert "W03" in page.locator("#home-window").inner_text()
    windows = page.locator("#home-table tbody tr td:nth-child(3)").all_inner_texts()
    assert 0 < len(windows) <= 10 and set(windows) == {WINDOW}
    figures = dict(zip(page.locator("#home-figures dt").all_inner_texts(),
                       page.locator("#home-figures dd").all_inner_texts(), strict=True))
    assert {"本窗口今日受理", "今日受理", "已超期", "今日可免提交材料"} <= set(figures)
    assert all(v.isdigit() for v in figures.values()), figures
    assert int(figures["在办"]) > 0
    # a case of the list opens its card; the tab brings the home page back
    first = page.locator("#home-table tbody tr").first.get_attribute("data-case")
    page.locator("#home-table tbody tr a").first.click()
    page.locator("#case-status").wait_for(timeout=15_000)
    assert page.locator("#case-id").inner_text() == first and page.locator("#home").is_hidden()
    page.click("#tab-search")
    page.locator("#home-table").wait_for(timeout=15_000)
    # a clerk has no supervisor view
    assert page.locator("#tab-supervision").is_hidden()
    assert errors == [], errors
    ctx.close()
