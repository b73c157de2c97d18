"""Screenshots of the pages for the README and docs/, signed in as each role would be.

    .venv/bin/python -m tests.e2e.screenshots [--out docs/screenshots] [--backlog-hours 70]
        [--compression 3600] [--rate 60] [--duration SECONDS]

Starts a local broker (or uses ONEWINDOW_TEST_KAFKA_BOOTSTRAP), the case-state and
materials workers, the sink and the counter app, and fills the model with `onewindow
simulate`, the traffic `make run` shows (docs/operations.md, *The demo*): its simulated
clock starts `--backlog-hours` of the service centre's open time back (default 70: two
working weeks, working days 09:00-12:00 and 13:30-17:30) and replays them up to now at
`--compression` open seconds a second (default 3600: an open hour a second, 70 s), at
most `--rate` events a second (default 60: an acceptance every 15 open minutes, as the
demo's); `--duration` bounds the run (default: the replay and 10 s). It waits until the
workers and the sink have drained it, makes a clerk of the busiest window, a supervisor
and an auditor (`onewindow users add`), then opens the pages in headless Debian chromium
and saves login.png (the sign-in page), counter.png (the clerk's case card), home.png
(the clerk's home page: today's figures and the latest cases of the window), receipt.png
(the acceptance receipt with its query code), board.png (the supervisor's window board),
supervision.png (the supervisor view's charts over the days of the replay), lookup.png (the
citizen's lookup with that code, phone-sized) and audit.png (the auditor's access log).
CJK text needs a CJK font (Debian: fonts-noto-cjk). The temporary directory (the
broker's data, the model, the processes' logs) is removed after a run that succeeds; a
run that fails prints where it is.
"""

from __future__ import annotations

import argparse
import os
import shutil
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


def _replayed_from(stack: Stack) -> str:
    """The first day of the last 30 with an acceptance: where the replay began."""
    rows = stack.get("/api/supervision/cases").json()["rows"]
    days = [r["day"] for r in rows if r["accepted"]]
    assert days, "the simulator's traffic accepted no case"
    return str(min(days))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "screenshots")
    ap.add_argument("--backlog-hours", type=float, default=70.0,
                    help="open hours of the service centre replayed (default 70: two "
                         "working weeks)")
    ap.add_argument("--compression", type=float, default=3600.0,
                    help="open seconds a wall-clock second (default 3600)")
    ap.add_argument("--rate", type=float, default=60.0, help="events a second, at most")
    ap.add_argument("--duration", type=float, default=None,
                    help="seconds the simulator runs (default: the replay and 10 s)")
    args = ap.parse_args()
    duration = args.duration if args.duration is not None \
        else args.backlog_hours * 3600 / args.compression + 10
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
        sim = stack.simulate(backlog_hours=args.backlog_hours, compression=args.compression,
                             rate=args.rate, duration=duration, seed=11)
        print(sim.strip().splitlines()[-1])  # noqa: T201
        stack.wait_drained(timeout=600)
        case_id, _card = _pick_case(stack)
        board = stack.get("/api/board").json()
        if not board["items"]:
            board = stack.get("/api/board", date=board["latest_accepted_on"]).json()
        busiest = max(board["windows"], key=lambda w: w["accepted"])["window_id"]
        for user, (roles, password, display) in STAFF.items():
            stack.add_user(user, roles, password, display,
                           window=busiest if "clerk" in roles else None)
        period = (_replayed_from(stack), board["today"])
        with chromium() as browser:
            _shoot(browser, stack, args.out, case_id, busiest, board["date"], period)
        print(f"screenshots of {case_id} and window {busiest} in {args.out}")  # noqa: T201
    except BaseException:
        print(f"the processes' logs are in {tmp}", file=sys.stderr)  # noqa: T201
        raise
    finally:
        stack.stop()
        if broker is not None:
            broker.stop()
    shutil.rmtree(tmp, ignore_errors=True)  # the broker's data and the model, once shot
    return 0


def _shoot(browser: Any, stack: Stack, out: Path, case_id: str, window: str, day: str,
           period: tuple[str, str]) -> None:
    base = stack.base
    desk = {"viewport": {"width": 1440, "height": 1000}}

    # the clerk: the sign-in page (asked for the screen first), the case card, the receipt,
    # the home page of the clerk's window
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
    receipt.close()
    page.goto(f"{base}/")
    page.wait_for_selector("#home-table tbody tr")
    page.wait_for_selector("#conn[data-state=live]")
    page.wait_for_timeout(800)
    page.screenshot(path=str(out / "home.png"), full_page=True)
    ctx.close()

    # the supervisor: the window board, the supervisor view over the replayed days
    ctx = new_context(browser, **desk)
    page = ctx.new_page()
    sign_in(page, base, "liqiang", STAFF["liqiang"][1], path=f"/board?window={window}&date={day}")
    page.wait_for_selector("#board-table")
    page.wait_for_selector("#conn[data-state=live]")
    page.wait_for_timeout(800)
    page.screenshot(path=str(out / "board.png"), full_page=True)
    page.goto(f"{base}/supervision?from={period[0]}&to={period[1]}")
    page.wait_for_function("() => document.body.dataset.loaded", timeout=30_000)
    page.wait_for_timeout(800)
    # the charts, down to the conflicts list (a box of its own that scrolls both ways)
    charts_end = page.evaluate("() => document.getElementById('card-conflicts')"
                               ".getBoundingClientRect().top + window.scrollY")
    page.screenshot(path=str(out / "supervision.png"), full_page=True,
                    clip={"x": 0, "y": 0, "width": desk["viewport"]["width"],
                          "height": charts_end - 4})
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
