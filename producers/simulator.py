"""`onewindow simulate`: department traffic at a chosen rate, for demos and soak runs.

Cases come from `producers.scenarios` (一件事 bundles with realistic timing). A simulated
clock starts `backlog` in the past and runs `compression` times faster than the wall
clock, never past now (an event from the future is dead-lettered as FUTURE_TIMESTAMP);
every event is published when the simulated clock reaches its `occurred_at`, at most
`rate` events per second. A share of events is deliberately invalid or resent, so the
dead-letter and duplicate paths have traffic too.
"""

from __future__ import annotations

import heapq
import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from onewindow.codec import SHANGHAI as _CST
from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.security.kafka_auth import department_principal, producer_config
from onewindow.topics import Topics
from producers.publisher import DepartmentPublishers
from producers.scenarios import ScenarioConfig, ScenarioGenerator


@dataclass
class SimulationConfig:
    rate: float = 5.0                 # events per wall-clock second, at most
    compression: float = 60.0         # simulated seconds per wall-clock second
    backlog: timedelta = timedelta(days=3)
    seed: int = 2026
    max_events: int | None = None
    max_seconds: float | None = None
    invalid_rate: float = 0.01
    duplicate_rate: float = 0.01


def _spoil(event: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """One realistic mistake: a mistyped ID, a broken hash, a spoofed or unknown sender."""
    bad = dict(event)
    roll = rng.random()
    if "holder" in bad and roll < 0.4:
        number = bad["holder"]["id_number"]
        last = "0" if number[-1] != "0" else "1"
        bad["holder"] = dict(bad["holder"], id_number=number[:-1] + last)
    elif "sha256" in bad and roll < 0.6:
        bad["sha256"] = bad["sha256"][:40]
    elif roll < 0.8:
        bad["department"] = "gaj" if bad["department"] != "gaj" else "swj"  # spoof
    else:
        bad["department"] = "unknown-dept"
    bad["event_id"] = bad["event_id"] + "-X"
    return bad


def simulate(settings: Settings, config: SimulationConfig, *,
             out: TextIO | None = None, now: Callable[[], datetime] | None = None,
             stop: Callable[[], bool] = lambda: False) -> dict[str, int]:
    clock = now or (lambda: datetime.now(UTC))
    rng = random.Random(config.seed)
    start_wall = time.monotonic()
    sim_start = clock() - config.backlog
    # Spacing of acceptances so that the event rate roughly matches `rate` (about 15
    # events per case) at this compression.
    spacing = max(0.05, config.compression * 15 / (config.rate * 60))
    gen = ScenarioGenerator(ScenarioConfig(seed=config.seed, start=sim_start,
                                           spacing_minutes=spacing))
    registry = load_registry(settings.departments_file)
    topics = Topics(settings.topic_prefix)
    pending: list[tuple[datetime, int, dict[str, Any]]] = []
    seq = itertools.count()
    next_accept = sim_start
    counts = {"sent": 0, "invalid": 0, "duplicates": 0, "cases": 0}
    last_report = time.monotonic()
    # each department publishes with its own credential (interfaces.md, Kafka)
    with DepartmentPublishers(
            settings.kafka_bootstrap, topics=topics, departments=registry.codes,
            codec=get_codec(),
            config_for=lambda d: producer_config(settings, department_principal(d))) as pub:
        while not stop():
            elapsed = time.monotonic() - start_wall
            if config.max_seconds is not None and elapsed >= config.max_seconds:
                break
            if config.max_events is not None and counts["sent"] >= config.max_events:
                break
            sim_now = min(clock(), sim_start + timedelta(seconds=elapsed * config.compression))
            while next_accept <= sim_now + timedelta(minutes=spacing):
                case = gen.case()
                counts["cases"] += 1
                next_accept = case[0]["occurred_at"]
                for e in case:
                    heapq.heappush(pending, (e["occurred_at"], next(seq), e))
            budget = int(config.rate * elapsed) + 1 - counts["sent"]  # token bucket
            sent_now = 0
            while pending and pending[0][0] <= sim_now and sent_now < budget:
                _, _, event = heapq.heappop(pending)
                if rng.random() < config.invalid_rate:
                    pub.send(_spoil(event, rng), validate_first=False,
                             topic=topics.input(event["department"]))
                    counts["invalid"] += 1
                pub.send(event, validate_first=False)
                if rng.random() < config.duplicate_rate:
                    pub.send(event, validate_first=False)
                    counts["duplicates"] += 1
                counts["sent"] += 1
                sent_now += 1
            if out is not None and time.monotonic() - last_report > 10:
                last_report = time.monotonic()
                print(f"simulate: {counts['sent']} events, {counts['cases']} cases, "  # noqa: T201
                      f"simulated time {sim_now.astimezone(_CST):%Y-%m-%d %H:%M}", file=out,
                      flush=True)
            time.sleep(0.05)
    return counts
