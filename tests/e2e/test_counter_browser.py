"""The counter screen and the progress lookup in a real browser, on the real stack.

Headless Debian chromium (Playwright with ``executable_path``; nothing downloads a
browser) against the counter app as a process, fed by `onewindow produce` -> the
case-state worker -> the sink -> SQLite. The screen must follow a case's status as new
events are produced, over Server-Sent Events, without a page reload.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from onewindow.departments import load_registry
from onewindow.provision import provision
from onewindow.topics import Topics
from tests.e2e.support import Stack, chromium, chromium_path
from tests.kafka_support import settings_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(chromium_path() is None, reason="needs Debian's chromium"),
]

CASE = "GZE2E0001"
RID = "440106198503121237"  # valid GB 11643
NAME = "陈静"


def _accepted(now: datetime) -> list[dict[str, Any]]:
    at = now - timedelta(minutes=30)
    tasks = [{"task_id": f"{CASE}-A", "department": "scjgj", "name": "食品经营许可"},
             {"task_id": f"{CASE}-B", "department": "zjj", "name": "消防安全检查"}]
    return [
        {"type": "CaseAccepted", "event_id": "e2e-1", "case_id": CASE, "department": "zwfw",
         "occurred_at": at, "service_code": "11440100MB2C92018X4440117002011",
         "service_name": "开办餐饮店", "case_kind": "JOINT", "channel": "COUNTER",
         "window_id": "W07",
         "applicant": {"kind": "PERSON", "id_type": "RESIDENT_ID", "id_number": RID,
                       "name": NAME},
         "promise": {"amount": 5, "unit": "WORKING_DAY"}, "tasks": tasks},
        {"type": "MaterialSubmitted", "event_id": "e2e-2", "case_id": CASE,
         "department": "scjgj", "occurred_at": at + timedelta(minutes=1),
         "material_id": "e2e-m1", "material_type": "ID_CARD", "name": "申请人身份证",
         "holder": {"id_type": "RESIDENT_ID", "id_number": RID, "name": NAME},
         "document_number": RID, "sha256": "ab" * 32, "pages": 1, "size_bytes": 1000,
         "form": "COPY", "declared_fields": {"name": NAME}, "task_id": f"{CASE}-A"},
        _update("e2e-3", f"{CASE}-A", "scjgj", "RECEIVED", at + timedelta(minutes=2)),
    ]


def _update(event_id: str, task: str, dept: str, status: str, at: datetime) -> dict[str, Any]:
    return {"type": "TaskUpdated", "event_id": event_id, "case_id": CASE, "department": dept,
            "occurred_at": at, "task_id": task, "status": status, "officer": None,
            "note": "请补充材料" if status == "SUPPLEMENT_REQUESTED" else None}


@pytest.fixture(scope="module")
def stack(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("e2e")
    topics = Topics(f"e2e{int(time.time())}.")
    provision(settings_for(kafka, topic_prefix=topics.prefix, partitions=3),
              load_registry().codes)
    s = Stack(kafka, topics, tmp)
    t0 = time.monotonic()
    try:
        s.start()
        s.produce(_accepted(datetime.now(UTC)))
        s.wait_version(CASE, 3)
        print(f"\n[e2e] stack up and first case in the model in {time.monotonic() - t0:.1f}s")
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def browser(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium(tmp_path_factory.mktemp("browser")) as ctx:
        yield ctx


def test_counter_screen_follows_the_case_live(stack: Stack, browser: Any) -> None:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(stack.base + "/")
    assert page.locator("#tab-search").inner_text() == "办件查询"  # Chinese by default
    page.wait_for_selector("#conn[data-state=live]", timeout=15_000)

    page.fill("#q", CASE)
    page.click("#search-btn")
    status = page.locator("#case-status")
    status.wait_for(timeout=10_000)
    assert status.get_attribute("data-code") == "ACCEPTED"
    assert status.inner_text() == "已受理"
    assert "剩余" in page.locator("#days-left").inner_text()
    assert page.locator("#tasks tbody tr").count() == 2
    assert "440106********1237" in page.locator("#case-card").inner_text()
    assert RID not in page.content()

    page.evaluate("window.__marker = 1")  # gone if the page reloads
    now = datetime.now(UTC)
    t0 = time.monotonic()
    stack.produce([_update("e2e-4", f"{CASE}-A", "scjgj", "IN_REVIEW", now)])
    page.wait_for_selector("#case-status[data-code=IN_PROGRESS]", timeout=20_000)
    live = time.monotonic() - t0
    assert status.inner_text() == "办理中"
    assert page.evaluate("window.__marker") == 1

    stack.produce([_update("e2e-5", f"{CASE}-B", "zjj", "SUPPLEMENT_REQUESTED",
                           now + timedelta(seconds=1))])
    page.wait_for_selector("#case-status[data-code=SUPPLEMENT_REQUIRED]", timeout=20_000)
    assert "暂停计时" in page.locator("#days-left").inner_text()
    assert "请补充材料" in page.locator("#timeline").inner_text()
    assert page.evaluate("window.__marker") == 1

    page.click("#lang")  # the English switch, remembered
    assert status.inner_text() == "Supplement required"
    assert page.evaluate("localStorage.getItem('onewindow.lang')") == "en"
    page.click("#lang")
    assert status.inner_text() == "待补正"
    assert errors == []
    print(f"\n[e2e] produced -> shown on the screen without reload in {live:.1f}s")
    page.close()


def test_window_board_lists_todays_cases_live(stack: Stack, browser: Any) -> None:
    page = browser.new_page()
    page.goto(stack.base + "/board?window=W07")
    row = page.locator(f"tr[data-case={CASE}]")
    row.wait_for(timeout=10_000)
    page.evaluate("window.__marker = 2")
    stack.produce([_update("e2e-6", f"{CASE}-B", "zjj", "SUPPLEMENT_RECEIVED",
                           datetime.now(UTC) + timedelta(seconds=2))])
    page.wait_for_selector(f"tr[data-case={CASE}] .chip[data-code=IN_PROGRESS]",
                           timeout=20_000)
    assert page.evaluate("window.__marker") == 2
    page.close()


def test_progress_lookup_masks_and_refuses_a_wrong_last_four(stack: Stack,
                                                             browser: Any) -> None:
    page = browser.new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(stack.base + "/lookup")
    page.fill("#case-id", CASE)
    page.fill("#last4", "1236")
    page.click("#lookup-btn")
    msg = page.locator("#lookup-message")
    msg.wait_for(timeout=10_000)
    assert "未查询到办件" in msg.inner_text()
    assert page.locator("#lookup-card").count() == 0

    page.fill("#last4", "1237")
    page.click("#lookup-btn")
    page.locator("#lookup-card").wait_for(timeout=10_000)
    assert page.locator("#lookup-name").inner_text() == "陈*"
    assert page.locator("#lookup-id").inner_text() == "440106********1237"
    assert page.locator("#lookup-status").get_attribute("data-code") in {
        "IN_PROGRESS", "SUPPLEMENT_REQUIRED"}
    assert NAME not in page.content() and RID not in page.content()
    # a phone-sized screen: nothing wider than the viewport
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.close()


def test_the_counter_app_stops_promptly_with_a_live_feed_open(stack: Stack,
                                                             browser: Any) -> None:
    page = browser.new_page()
    page.goto(stack.base + "/")
    page.wait_for_selector("#conn[data-state=live]", timeout=15_000)
    took = stack.stop_counter()
    # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly
    assert stack.procs["counter"].returncode in (0, -15)
    assert took < 5, took  # the open SSE stream does not hold the shutdown
    print(f"\n[e2e] counter app stopped in {took:.1f}s with a live feed open")
    page.close()

