"""Screenshots of the counter screen, the window board and the progress lookup for docs/.

    .venv/bin/python -m tests.e2e.screenshots [--out docs/screenshots] [--duration 60]

Starts a local broker (or uses ONEWINDOW_TEST_KAFKA_BOOTSTRAP), the case-state and
materials workers, the sink and the counter app, fills the model with `onewindow
simulate` (bounded, fast-forwarded over the last two days), then opens the pages in
headless Debian chromium and saves counter.png, board.png and lookup.png (phone-sized).
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

import httpx

from onewindow.config import Settings, get_settings
from onewindow.departments import load_registry
from onewindow.kafka_local import LocalKafka, free_port
from onewindow.provision import provision
from onewindow.topics import Topics
from tests import REPO_ROOT
from tests.e2e.support import Stack, chromium


def _pick_case(base: str) -> tuple[str, dict[str, Any]]:
    """An open case whose card shows documents on file (reusable, ideally a conflict)."""
    best: tuple[int, str, dict[str, Any]] | None = None
    for status in ("IN_PROGRESS", "SUPPLEMENT_REQUIRED"):
        items = httpx.get(f"{base}/api/cases", params={"status": status, "limit": 150},
                          timeout=30).json()["items"]
        for c in items:
            card = httpx.get(f"{base}/api/cases/{c['case_id']}/card", timeout=30).json()
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
        case_id, card = _pick_case(stack.base)
        applicant = card["case"]["applicant"]
        with chromium(tmp) as ctx:
            page = ctx.new_page()
            page.set_viewport_size({"width": 1440, "height": 1000})
            page.goto(f"{stack.base}/?case={case_id}")
            page.wait_for_selector("#case-status")
            page.wait_for_selector("#conn[data-state=live]")
            page.wait_for_timeout(800)
            page.screenshot(path=str(args.out / "counter.png"), full_page=True)

            board = httpx.get(f"{stack.base}/api/board", timeout=30).json()
            if not board["items"]:
                board = httpx.get(f"{stack.base}/api/board",
                                  params={"date": board["latest_accepted_on"]}).json()
            busiest = max(board["windows"], key=lambda w: w["accepted"])["window_id"]
            page.goto(f"{stack.base}/board?window={busiest}&date={board['date']}")
            page.wait_for_selector("#board-table")
            page.wait_for_timeout(800)
            page.screenshot(path=str(args.out / "board.png"), full_page=True)

            page.set_viewport_size({"width": 390, "height": 844})
            page.goto(f"{stack.base}/lookup")
            page.fill("#case-id", case_id)
            page.fill("#last4", applicant["id_masked"][-4:])
            page.click("#lookup-btn")
            page.wait_for_selector("#lookup-card")
            page.wait_for_timeout(300)
            page.screenshot(path=str(args.out / "lookup.png"), full_page=True)
        print(f"screenshots of {case_id} and window {busiest} in {args.out}")  # noqa: T201
    finally:
        stack.stop()
        if broker is not None:
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
