"""The supervisor view and the home page in a real browser (issue 16), on a stack fed by
the simulator.

The real stack of tests/e2e/support.py on the session's secured broker: the case-state
and materials workers, the sink (SQLite) and the counter app as processes. `onewindow
simulate` feeds it the demo's traffic (producers/simulator.py, what `make run` shows,
docs/operations.md *The demo*), started beside the stack: 10 hours of the service
centre's open time up to now replayed at 7,200 x (5 s, an acceptance every 22.5 open
minutes): the scripted opening (avoidable submissions, a 补正, approvals, a refusal, a
conflict) and random 一件事 cases beside it, 5 % of the events spoiled (dead letters).
The test waits until the workers and the sink have drained it; headless Debian chromium
signs in through the login page.

The supervisor sees every chart drawn with data (each ECharts instance has series with
values, and its canvas is painted), toggles one chart to its table, downloads its CSV (Playwright's
download: the header and every row of the table), and opens a conflict's case from the
list; nothing is fetched from another host and the page logs no error (a CSP violation
would be one). A clerk of the window that accepted the newest case sees today's figures
and the latest cases of that window on the home page.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Browser, Page

from onewindow.departments import load_registry
from onewindow.provision import provision
from onewindow.topics import Topics
from tests.e2e.page_checks import only_from
from tests.e2e.support import Stack, chromium, new_context, sign_in
from tests.kafka_support import settings_for

SUPERVISOR = ("super-v", "Super-view-pass-2025")
CLERK = ("clerk-w", "Clerk-window-pass-2025")
#: the charts of the view (counter/static/supervision.js), each a dataset of the API
CHARTS = ("cases", "sla", "open-cases", "decision-times", "avoidable", "resubmitted",
          "dead-letters")
SLA_CSV = ["day", "on_track", "due_soon", "overdue", "paused", "on_time", "late"]


@pytest.fixture(scope="module")
def stack(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("supervisor")
    topics = Topics(f"sv{int(time.time())}.")
    provision(settings_for(kafka, topic_prefix=topics.prefix, partitions=3),
              load_registry().codes)
    s = Stack(kafka, topics, tmp, materials=True)
    t0 = time.monotonic()
    try:
        # the simulator publishes while the workers start: they read the topics from the start
        sim = s.simulator(backlog_hours=10, compression=7200, rate=80, invalid_rate=0.05,
                          seed=16)
        s.start()
        t1 = time.monotonic()
        sent = s.finish_simulator(sim).strip().splitlines()[-1].removeprefix("simulate: ")
        t2 = time.monotonic()
        s.wait_drained()
        print(f"\n[e2e] stack up in {t1 - t0:.1f}s, simulator done at {t2 - t0:.1f}s "  # noqa: T201
              f"({sent}), all in the model at {time.monotonic() - t0:.1f}s")
        s.add_user(SUPERVISOR[0], ["supervisor"], SUPERVISOR[1])
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def window(stack: Stack) -> str:
    """The window that accepted the newest case; its clerk (`users add --window`)."""
    windows = [c["window_id"] for c in stack.get("/api/cases", limit=20).json()["items"]
               if c["window_id"]]
    assert windows, "the simulator's traffic left no case accepted at a window"
    stack.add_user(CLERK[0], ["clerk"], CLERK[1], window=windows[0])
    return str(windows[0])


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[Browser]:
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
#: whether every chart's canvas has been painted: pixels neither transparent nor white
#: (ECharts draws on the next animation frame after setOption)
CHARTS_PAINTED = """() => {
  const cards = [...document.querySelectorAll('.sup-chart')];
  return cards.length > 0 && cards.every((el) => {
    const canvas = el.querySelector('canvas');
    if (!canvas || !canvas.width || !canvas.height) return false;
    const px = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let ink = 0;
    for (let i = 0; i < px.length; i += 16) {
      if (px[i + 3] > 0 && (px[i] < 230 || px[i + 1] < 230 || px[i + 2] < 230)) ink += 1;
    }
    return ink > 200;
  });
}"""


def _watch(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.on("console", lambda m: errors.append(f"console: {m.text}")
            if m.type == "error" and "401" not in m.text else None)
    return errors


def test_the_supervisor_sees_every_chart_its_table_and_its_csv(stack: Stack,
                                                               browser: Browser) -> None:
    ctx = new_context(browser, accept_downloads=True, viewport={"width": 1400, "height": 1000})
    refused = only_from(ctx, stack.base)
    page = ctx.new_page()
    errors = _watch(page)
    sign_in(page, stack.base, *SUPERVISOR, path="/supervision")
    assert page.url.startswith(f"{stack.base}/supervision")
    page.wait_for_function("() => document.body.dataset.loaded", timeout=30_000)
    page.wait_for_function(CHARTS_PAINTED, timeout=30_000)

    charts = {c["id"]: c for c in page.evaluate(CHART_DATA)}
    assert set(charts) == {f"chart-{name}" for name in CHARTS}
    for name, c in charts.items():
        assert c["series"] and all(n > 0 for n in c["series"]), (name, c)
        assert c["positive"] and c["canvas"] > 0, (name, c)

    # one chart to its table: the same rows, then back
    sla_rows = int(page.get_attribute("#card-sla", "data-rows") or "0")
    assert sla_rows >= 1
    page.click("#toggle-sla")
    assert page.get_attribute("#card-sla", "data-view") == "table"
    assert page.locator("#chart-sla").is_hidden()
    rows = page.locator("#table-sla table tbody tr")
    assert rows.count() == sla_rows
    header = page.locator("#table-sla th").all_inner_texts()
    assert header[0] == "日期" and "已超期" in header
    assert page.locator("#table-sla th").evaluate_all(
        "(ths) => ths.map((th) => th.dataset.col)") == SLA_CSV
    shown = [r.locator("td").all_inner_texts() for r in rows.all()]

    # its CSV: the same table as a file
    with page.expect_download() as dl:
        page.click("#csv-sla")
    download = dl.value
    assert download.suggested_filename.startswith("supervision-sla-")
    text = Path(download.path()).read_bytes().decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0] == SLA_CSV
    assert lines[1:] == shown
    assert any(int(v) > 0 for line in lines[1:] for v in line[1:])
    page.click("#toggle-sla")
    assert page.get_attribute("#card-sla", "data-view") == "chart"

    # the conflicts: a list an inspector opens case by case
    links = page.locator("#table-conflicts a.case-link")
    assert links.count() > 0
    case_id = links.first.inner_text()
    with ctx.expect_page() as opened:
        links.first.click()
    card = opened.value
    card.locator("#case-status").wait_for(timeout=15_000)
    assert card.locator("#case-id").inner_text() == case_id

    # a quick period is for the department the form shows, applied or not (a newcomer's
    # finding: it kept the last applied one), and back to every department
    dept = page.locator("#f-department option").nth(1).get_attribute("value")
    assert dept
    page.select_option("#f-department", dept)
    loaded = page.evaluate("() => document.body.dataset.loaded")
    page.click(".quick button[data-days='7']")
    page.wait_for_function(f"() => document.body.dataset.loaded !== '{loaded}'")
    query = parse_qs(urlparse(page.url).query)
    assert query["department"] == [dept], page.url
    today = date.fromisoformat(query["to"][0])
    assert query["from"] == [(today - timedelta(days=6)).isoformat()], page.url
    page.select_option("#f-department", "")
    loaded = page.evaluate("() => document.body.dataset.loaded")
    page.click(".quick button[data-days='30']")
    page.wait_for_function(f"() => document.body.dataset.loaded !== '{loaded}'")
    assert "department" not in parse_qs(urlparse(page.url).query), page.url

    assert refused == [], refused
    assert errors == [], errors
    ctx.close()


def test_the_home_page_shows_today_and_the_latest_cases_of_the_window(
        stack: Stack, window: str, browser: Browser) -> None:
    ctx = new_context(browser)
    page = ctx.new_page()
    errors = _watch(page)
    sign_in(page, stack.base, *CLERK)
    page.locator("#home-table").wait_for(timeout=15_000)
    assert window in page.locator("#home-window").inner_text()
    windows = page.locator("#home-table tbody tr td:nth-child(3)").all_inner_texts()
    assert 0 < len(windows) <= 10 and set(windows) == {window}
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
