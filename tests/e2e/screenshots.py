"""Screenshots of the pages for the README and docs/, signed in as each role would be.

    .venv/bin/python -m tests.e2e.screenshots [--out docs/screenshots] [--duration 60]

Starts a local broker (or uses ONEWINDOW_TEST_KAFKA_BOOTSTRAP), the case-state and
materials workers, the sink and the counter app, fills the model with `onewindow
simulate` (bounded, fast-forwarded over the last two days), makes a clerk, a supervisor
and an auditor (`onewindow users add`), then opens the pages in headless Debian chromium
and saves login.png (the sign-in page), counter.png (the clerk's case card), board.png
(the supervisor's window board), receipt.png (the acceptance receipt with its query code),
lookup.png (the citizen's lookup with that code, phone-sized) and audit.png (the
auditor's access log). CJK text needs a CJK font (Debian: fonts-noto-cjk).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from onewindow.config import Settings, get_settings
from onewindow.departments import load_registry
from onewindow.kafka_local import LocalKafka, free_port
from onewindow.provision import provision
from onewindow.topics import Topics
from tests import REPO_ROOT
from tests.e2e.support import Stack, chromium, new_context, sign_in

#: user name -> (roles, password, display name)
STAFF = {
    "wangfang": (["clerk"], "Wang-fang-pass-2025", "王芳"),
    "liqiang": (["supervisor"], "Li-qiang-pass-2025", "李强"),
    "zhaomin": (["auditor"], "Zhao-min-pass-2025", "赵敏"),
}


def _pick_case(stack: Stack) -> tuple[str, dict[str, Any]]:
    """An open case whose card shows documents on file (reusable, ideally a conflict)."""
    best: tuple[int, str, dict[str, Any]] | None = None
    for status in ("IN_PROGRESS", "SUPPLEMENT_REQUIRED"):
        items = stack.get("/api/cases", status=status, limit=150).json()["items"]
        for c in items:
            card = stack.get(f"/api/cases/{c['case_id']}/card").json()
            docs = [d for h in card["holders"] for d in h["documents"]]
            reusable = sum(d["reusable"] for d in docs)
            done = sum(t["status"] in ("APPROVED", "REJECTED") for t in c["tasks"])
            score = (reusable * 2 + min(card["conflicts"], 1) * 6 + len(c["tasks"])
                     + (3 if 0 < done < len(c["tasks"]) else 0) - max(0, len(docs) - 6) * 2)
            if best is None or score > best[0]:
                best = (score, c["case_id"], card)
    assert best is not None, "no open case in the model"
    return best[1], best[2]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "screenshots")
    ap.add_argument("--duration", type=float, default=60.0)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="onewindow-shots-"))
    broker = None
    kafka = os.environ.get("ONEWINDOW_TEST_KAFKA_BOOTSTRAP")
    if not kafka:
        broker = LocalKafka(data_dir=tmp / "kafka", port=free_port(),
                            controller_port=free_port(), cache_dir=get_settings().cache_dir,
                            credentials_dir=tmp / "credentials")
        broker.start()
        kafka = broker.bootstrap
        os.environ["ONEWINDOW_KAFKA_CREDENTIALS_DIR"] = str(tmp / "credentials")
    topics = Topics(f"shots{int(time.time())}.")
    provision(Settings(kafka_bootstrap=kafka, topic_prefix=topics.prefix, partitions=3),
              load_registry().codes)
    stack = Stack(kafka, topics, tmp, materials=True)
    try:
        stack.start()
        sim = subprocess.run(
            [sys.executable, "-m", "onewindow_cli", "simulate", "--rate", "300",
             "--compression", "3600", "--backlog-hours", "48", "--seed", "11",
             "--duration", str(args.duration)],
            env=stack.env, capture_output=True, text=True, timeout=args.duration + 60)
        print(sim.stdout.strip().splitlines()[-1])  # noqa: T201
        time.sleep(8)  # let the workers and the sink drain
        for user, (roles, password, display) in STAFF.items():
            stack.add_user(user, roles, password, display)
        case_id, _card = _pick_case(stack)
        board = stack.get("/api/board").json()
        if not board["items"]:
            board = stack.get("/api/board", date=board["latest_accepted_on"]).json()
        busiest = max(board["windows"], key=lambda w: w["accepted"])["window_id"]
        with chromium() as browser:
            _shoot(browser, stack, args.out, case_id, busiest, board["date"])
        print(f"screenshots of {case_id} and window {busiest} in {args.out}")  # noqa: T201
    finally:
        stack.stop()
        if broker is not None:
            broker.stop()
    return 0


def _shoot(browser: Any, stack: Stack, out: Path, case_id: str, window: str, day: str
           ) -> None:
    base = stack.base
    desk = {"viewport": {"width": 1440, "height": 1000}}

    # the clerk: the sign-in page (asked for the screen first), the case card, the receipt
    ctx = new_context(browser, **desk)
    page = ctx.new_page()
    page.goto(f"{base}/?case={case_id}")
    page.wait_for_selector("#username")
    page.set_viewport_size({"width": 1000, "height": 700})
    page.fill("#username", "wangfang")
    page.wait_for_timeout(300)
    page.screenshot(path=str(out / "login.png"))
    page.set_viewport_size(desk["viewport"])
    sign_in(page, base, "wangfang", STAFF["wangfang"][1])
    page.wait_for_selector("#case-status")
    page.wait_for_selector("#conn[data-state=live]")
    page.wait_for_timeout(800)
    page.screenshot(path=str(out / "counter.png"), full_page=True)
    with ctx.expect_page() as opened:
        page.click("#receipt-link")
    receipt = opened.value
    receipt.set_viewport_size({"width": 760, "height": 640})
    receipt.wait_for_selector("#receipt-code")
    code = receipt.locator("#receipt-code").inner_text().strip()
    receipt.wait_for_timeout(300)
    receipt.screenshot(path=str(out / "receipt.png"), full_page=True)
    ctx.close()

    # the supervisor: the window board
    ctx = new_context(browser, **desk)
    page = ctx.new_page()
    sign_in(page, base, "liqiang", STAFF["liqiang"][1], path=f"/board?window={window}&date={day}")
    page.wait_for_selector("#board-table")
    page.wait_for_selector("#conn[data-state=live]")
    page.wait_for_timeout(800)
    page.screenshot(path=str(out / "board.png"), full_page=True)
    ctx.close()

    # the citizen, on a phone: the lookup with the receipt's query code
    ctx = new_context(browser, viewport={"width": 390, "height": 844})
    page = ctx.new_page()
    page.goto(f"{base}/lookup")
    page.fill("#case-id", case_id)
    page.fill("#query-code", code)
    page.click("#lookup-btn")
    page.wait_for_selector("#lookup-card")
    page.wait_for_timeout(300)
    page.screenshot(path=str(out / "lookup.png"), full_page=True)
    ctx.close()

    # the auditor: the access log, the newest reads first (the ones above among them)
    ctx = new_context(browser, **desk)
    page = ctx.new_page()
    sign_in(page, base, "zhaomin", STAFF["zhaomin"][1])
    page.wait_for_selector("#audit-table")
    page.wait_for_timeout(500)
    page.screenshot(path=str(out / "audit.png"))
    ctx.close()


if __name__ == "__main__":
    sys.exit(main())
