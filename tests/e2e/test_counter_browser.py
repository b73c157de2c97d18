"""The counter screen, the sign-in, the receipt, the access log and the progress lookup
in a real browser, on the real stack.

Headless Debian chromium (Playwright with ``executable_path``; nothing downloads a
browser) against the counter app as a process, fed by `onewindow produce` -> the
case-state worker -> the sink -> SQLite. Staff sign in through the login page (users made
by `onewindow users add`), each in a browser context of their own. The screen must follow
a case's status as new events are produced, over Server-Sent Events, without a page
reload; the citizen's lookup takes the query code printed on the clerk's receipt.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from onewindow.departments import load_registry
from onewindow.provision import provision
from onewindow.topics import Topics
from tests.e2e.page_checks import (
    cjk_families,
    listed_operations,
    only_from,
    platform_fonts,
    spec_operations,
)
from tests.e2e.support import Stack, chromium, chromium_path, new_context, sign_in
from tests.integration.gateway_support import gateway_process
from tests.kafka_support import settings_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(chromium_path() is None, reason="needs Debian's chromium"),
]

CASE = "GZE2E0001"
RID = "440106198503121237"  # valid GB 11643
NAME = "陈静"

#: the staff of these tests: user name -> (roles, password, display name)
STAFF = {
    "clerk1": (["clerk"], "Clerk-one-pass-2025", "王芳"),
    "super1": (["supervisor"], "Super-one-pass-2025", "李强"),
    "audit1": (["auditor"], "Audit-one-pass-2025", "赵敏"),
}


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
        for user, (roles, password, display) in STAFF.items():
            s.add_user(user, roles, password, display)
        s.produce(_accepted(datetime.now(UTC)))
        s.wait_version(CASE, 3)
        print(f"\n[e2e] stack up and first case in the model in {time.monotonic() - t0:.1f}s")
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[Browser]:
    with chromium() as b:
        yield b


def _signed_in(browser: Browser, stack: Stack, user: str, path: str = "/login",
               **options: Any) -> tuple[BrowserContext, Page]:
    """A fresh browser context of ``user``, signed in through the login page."""
    ctx = new_context(browser, **options)
    page = ctx.new_page()
    sign_in(page, stack.base, user, STAFF[user][1], path=path)
    return ctx, page


def _only_rows_of(page: Page, key: str, value: str) -> None:
    """Wait until the access-log table shows rows, each with ``data-<key>`` starting with
    ``value`` (the answer of a new query)."""
    page.wait_for_function(
        """([key, value]) => {
             const rows = [...document.querySelectorAll('#audit-table tbody tr')];
             return rows.length > 0 && rows.every(r => (r.dataset[key] || '').startsWith(value));
           }""", arg=[key, value], timeout=10_000)


def _open_case(page: Page) -> None:
    page.fill("#q", CASE)
    page.click("#search-btn")
    page.locator("#case-status").wait_for(timeout=10_000)


def test_without_a_session_the_screen_sends_to_login_and_back(stack: Stack,
                                                              browser: Browser) -> None:
    ctx = new_context(browser)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(stack.base + "/")
    assert page.url == stack.base + "/login?next=%2F"
    assert page.locator("#login-btn").inner_text() == "登录"  # Chinese by default
    assert page.locator("#oidc").is_hidden()  # no identity provider configured

    page.fill("#username", "clerk1")
    page.fill("#password", "not-the-password-1")
    page.click("#login-btn")
    msg = page.locator("#login-message")
    msg.wait_for(timeout=10_000)
    assert "用户名或密码错误" in msg.inner_text()
    assert page.input_value("#password") == ""

    sign_in(page, stack.base, "clerk1", STAFF["clerk1"][1])
    assert page.url == stack.base + "/"
    page.wait_for_selector("#conn[data-state=live]", timeout=15_000)
    me = page.request.get(stack.base + "/api/session").json()
    assert me["subject"] == "local:clerk1" and me["roles"] == ["clerk"]
    assert page.locator("#who-name").inner_text() == me["name"]
    assert page.locator("#who-roles").inner_text() == "窗口人员"
    assert page.locator("#tab-board").is_hidden()  # a clerk has no board
    assert errors == []
    ctx.close()


def test_counter_screen_follows_the_case_live(stack: Stack, browser: Browser) -> None:
    ctx, page = _signed_in(browser, stack, "clerk1")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    assert page.url == stack.base + "/"
    assert page.locator("#tab-search").inner_text() == "办件查询"  # Chinese by default
    page.wait_for_selector("#conn[data-state=live]", timeout=15_000)

    _open_case(page)
    status = page.locator("#case-status")
    assert status.get_attribute("data-code") == "ACCEPTED"
    assert status.inner_text() == "已受理"
    assert "剩余" in page.locator("#days-left").inner_text()
    assert page.locator("#tasks tbody tr").count() == 2
    assert page.locator("#more-tasks").count() == 0  # every task listed
    assert "44**************37" in page.locator("#case-card").inner_text()
    assert RID not in page.content()
    assert page.locator("#receipt-link").inner_text() == "打印回执"

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
    assert page.locator("#signout").inner_text() == "Sign out"
    assert page.locator("#who-roles").inner_text() == "Clerk"
    assert page.evaluate("localStorage.getItem('onewindow.lang')") == "en"
    page.click("#lang")
    assert status.inner_text() == "待补正"
    assert errors == []
    print(f"\n[e2e] produced -> shown on the screen without reload in {live:.1f}s")
    ctx.close()


def test_window_board_lists_todays_cases_live(stack: Stack, browser: Browser) -> None:
    # asked for before signing in: the login page brings the supervisor back to it
    ctx, page = _signed_in(browser, stack, "super1", path="/board?window=W07")
    assert page.url == stack.base + "/board?window=W07"
    # shown by the page's script once /api/session answers: wait for it, never sample it
    expect(page.locator("#tab-board")).to_be_visible(timeout=10_000)
    expect(page.locator("#who-roles")).to_have_text("窗口主管")
    row = page.locator(f"tr[data-case={CASE}]")
    row.wait_for(timeout=10_000)
    page.wait_for_selector("#conn[data-state=live]", timeout=15_000)
    page.evaluate("window.__marker = 2")
    stack.produce([_update("e2e-6", f"{CASE}-B", "zjj", "SUPPLEMENT_RECEIVED",
                           datetime.now(UTC) + timedelta(seconds=2))])
    page.wait_for_selector(f"tr[data-case={CASE}] .chip[data-code=IN_PROGRESS]",
                           timeout=20_000)
    assert page.evaluate("window.__marker") == 2
    # the board counts a case's tasks by status (it does not list them): none done of 2
    assert row.locator("td").nth(6).inner_text().strip() == "0/2"
    ctx.close()


def test_the_receipt_code_opens_the_citizens_lookup(stack: Stack, browser: Browser) -> None:
    ctx, page = _signed_in(browser, stack, "clerk1")
    _open_case(page)
    with ctx.expect_page() as opened:
        page.click("#receipt-link")  # a new tab
    receipt = opened.value
    receipt.wait_for_load_state()
    assert receipt.url == f"{stack.base}/api/cases/{CASE}/receipt"
    assert receipt.locator("#receipt-case").inner_text() == CASE
    code = receipt.locator("#receipt-code").inner_text().strip()
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}", code), code
    assert RID not in receipt.content()
    ctx.close()

    citizen = new_context(browser, viewport={"width": 390, "height": 844})
    page = citizen.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(stack.base + "/lookup")
    assert "/lookup" in page.url  # public: no sign-in
    assert "查询码印在受理回执上" in page.locator(".footnote").inner_text()
    wrong = ("1" if code[0] != "1" else "2") + code[1:]
    page.fill("#case-id", CASE)
    page.fill("#query-code", wrong)
    page.click("#lookup-btn")
    msg = page.locator("#lookup-message")
    msg.wait_for(timeout=10_000)
    assert "未查询到办件" in msg.inner_text()
    assert page.locator("#lookup-card").count() == 0

    page.fill("#query-code", code.replace("-", "").lower())  # case and hyphen do not matter
    page.click("#lookup-btn")
    page.locator("#lookup-card").wait_for(timeout=10_000)
    assert msg.is_hidden()
    assert page.locator("#lookup-name").inner_text() == "陈*"
    assert page.locator("#lookup-id").inner_text() == "44**************37"
    assert page.locator("#lookup-status").get_attribute("data-code") in {
        "IN_PROGRESS", "SUPPLEMENT_REQUIRED"}
    assert page.locator(".steps li").count() >= 2  # the progress, newest first
    assert NAME not in page.content() and RID not in page.content()
    # a phone-sized screen: nothing wider than the viewport
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert errors == []
    citizen.close()


def test_the_auditor_sees_who_read_what(stack: Stack, browser: Browser) -> None:
    # a read of the holder's documents by ID number (logged by the number's keyed hash)
    r = stack.get("/api/holders/materials", id_type="RESIDENT_ID", id_number=RID)
    assert r.status_code == 200, r.text
    sent: list[tuple[str, str]] = []
    ctx = new_context(browser, viewport={"width": 1440, "height": 900})
    page = ctx.new_page()
    page.on("request", lambda req: sent.append((req.url, req.post_data or "")))
    sign_in(page, stack.base, "audit1", STAFF["audit1"][1])
    assert page.url == stack.base + "/audit"  # the auditor's start page
    assert page.locator("#who-roles").inner_text() == "审计员"
    # (each card read also logs a read per holder shown: filter to the card reads)
    page.select_option("#f-action", "case.card")
    page.click("#audit-search")
    card = page.locator(f"#audit-table tr[data-action='case.card'][data-target={CASE}]")
    card.first.wait_for(timeout=10_000)
    assert "local:clerk1" in card.first.inner_text()
    times = page.locator("#audit-table tbody tr td:first-child").all_inner_texts()
    assert times == sorted(times, reverse=True)  # newest first

    page.click("#audit-reset")
    page.fill("#f-target", CASE)
    page.select_option("#f-action", "case.receipt")
    page.click("#audit-search")
    _only_rows_of(page, "action", "case.receipt")
    assert "clerk1" in page.locator("#audit-table").inner_text()

    page.click("#audit-reset")
    page.select_option("#f-id-type", "RESIDENT_ID")
    page.fill("#f-id-number", RID)
    page.click("#audit-search")
    # the reads of that holder: the documents read above (and this very query of the log)
    _only_rows_of(page, "target", "holder:RESIDENT_ID:")
    docs = page.locator("#audit-table tr[data-action='holder.documents']")
    # the API read above, and the clerk's card reads that showed this holder
    assert docs.filter(has_text="e2e-api").count() == 1
    assert docs.filter(has_text="case card").count() == docs.count() - 1
    assert RID not in page.content()
    # the ID number went in a request body, never in a URL
    assert any(RID in body for url, body in sent if url.endswith("/api/access-log/query"))
    assert not any(RID in url for url, _ in sent)
    ctx.close()

    # a clerk asking for the access log is refused, and told so on the login page
    ctx, page = _signed_in(browser, stack, "clerk1")
    page.goto(stack.base + "/audit")
    assert page.url.startswith(stack.base + "/login?next=%2Faudit&denied=1")
    expect(page.locator("#login-message")).to_contain_text("无权访问")  # filled in by login.js
    me = page.request.get(stack.base + "/api/session").json()
    assert me["name"] in page.locator("#signed-in-text").inner_text()
    assert page.get_attribute("#go-home", "href") == "/"
    assert page.request.get(stack.base + "/api/access-log").status == 403
    ctx.close()


def test_signing_out_ends_the_session(stack: Stack, browser: Browser) -> None:
    ctx, page = _signed_in(browser, stack, "clerk1")
    page.wait_for_selector("#conn[data-state=live]", timeout=15_000)
    cookie = next(c["value"] for c in ctx.cookies() if c["name"] == "onewindow_session")
    assert page.request.get(stack.base + "/api/session").status == 200
    page.click("#signout")
    page.wait_for_url(stack.base + "/login", timeout=10_000)
    assert page.request.get(stack.base + "/api/session").status == 401
    # the session ended on the server, not only in this browser
    r = httpx.get(stack.base + "/api/session", cookies={"onewindow_session": cookie},
                  timeout=5)
    assert r.status_code == 401
    page.goto(stack.base + "/")
    assert "/login?next=%2F" in page.url
    ctx.close()


def test_the_chinese_text_is_drawn_with_a_font_that_has_its_glyphs(stack: Stack,
                                                                   browser: Browser) -> None:
    """Chromium draws a character no font of the page has with a fallback; with no CJK
    font on the machine that is a box (tofu) in a Latin font, and the page still 'works'.
    The platform fonts Chromium reports for each all-Chinese element must be fonts that
    cover Chinese (fontconfig's ``:lang=zh``), and must have drawn every character."""
    cjk = cjk_families()
    assert cjk, "no font covers Chinese: apt-get install fonts-noto-cjk (make deps-test)"
    ctx, page = _signed_in(browser, stack, "clerk1")
    _open_case(page)
    for selector in ("#tab-search", "#search-btn", "#case-status", "#who-roles"):
        text = page.locator(selector).inner_text()
        assert text and all("\u4e00" <= ch <= "\u9fff" for ch in text), (selector, text)
        used = platform_fonts(ctx, page, selector)
        assert set(used) <= cjk and sum(used.values()) == len(text), (
            f"{selector} {text!r} drawn with {used}; fonts covering Chinese: {sorted(cjk)}")
    print(f"\n[e2e] Chinese drawn with {sorted(used)}")
    ctx.close()


def test_the_api_docs_list_every_operation_offline(stack: Stack, browser: Browser,
                                                    tmp_path: Path) -> None:
    """``/docs`` of the counter app (signed in) and of the ingestion gateway (public):
    Swagger UI from the app's own assets lists every operation of its OpenAPI document,
    while every request to another host is refused, as on a machine without Internet."""
    ctx = new_context(browser)
    refused = only_from(ctx, stack.base)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, stack.base, "clerk1", STAFF["clerk1"][1], path="/login?next=%2Fdocs")
    page.goto(stack.base + "/docs")
    want = spec_operations(page.request.get(stack.base + "/openapi.json").json())
    assert ("GET", "/api/cases/{case_id}") in want
    assert listed_operations(page) == want
    assert refused == [] and errors == []
    ctx.close()

    with gateway_process(tmp_path, stack.kafka, stack.topics.prefix) as gw:
        ctx = new_context(browser)
        refused = only_from(ctx, gw.base)
        page = ctx.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(gw.base + "/docs")
        want = spec_operations(page.request.get(gw.base + "/openapi.json").json())
        assert ("POST", "/ingest/v1/events") in want
        assert listed_operations(page) == want
        assert refused == [] and errors == []
        ctx.close()


def test_the_counter_app_stops_promptly_with_a_live_feed_open(stack: Stack,
                                                             browser: Browser) -> None:
    ctx, page = _signed_in(browser, stack, "clerk1")
    page.wait_for_selector("#conn[data-state=live]", timeout=15_000)
    took = stack.stop_counter()
    # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly
    assert stack.procs["counter"].returncode in (0, -15)
    assert took < 5, took  # the open SSE stream does not hold the shutdown
    print(f"\n[e2e] counter app stopped in {took:.1f}s with a live feed open")
    ctx.close()
