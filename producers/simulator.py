"""`onewindow simulate`: department traffic at a chosen rate, for demos and soak runs.

Cases come from `producers.scenarios` (一件事 bundles with realistic timing), and every
run starts with its scripted opening (`ScenarioGenerator.opening`: acceptance, review,
补正, approvals, a refusal, avoidable submissions and a conflict within `OPENING_SPAN`).
A simulated clock starts `backlog` in the past (open time under service hours: 35 hours,
a working week, by default) and runs `compression` times faster than the wall clock,
never past now: an event is published when the simulated clock reaches
its `occurred_at`, so none is ever in the future (the workers dead-letter one more than
10 minutes ahead as FUTURE_TIMESTAMP, domain.md section 2), at most `rate` events per
second. A share of events is deliberately invalid or resent, so the dead-letter and
duplicate paths have traffic too.

Service hours (`producers.service_hours`, the default): the centre is open on working
days 09:00-12:00 and 13:30-17:30 Asia/Shanghai; acceptances and every delay of a case are
counted in open time, and the compressed clock counts open time too, so it skips nights,
lunch breaks, weekends and holidays in no wall-clock time (at 300 x a working day takes
84 s). Once it has caught up with now it follows the wall clock: traffic then comes as
the centre's real hours allow. `around_the_clock`: clock time throughout, as before.

A restart never collides with the last run and replays little of it (a restarted
`make run`):

- every run has its own id namespace (`run_id`, from the start time in milliseconds,
  base 36): it is part of every case id, so of every event id, and mixed into the seed;
- the simulated clock a run reached is kept in `<data dir>/simulate-cursor.json` (per
  bootstrap and topic prefix, written every few seconds and at the end, however the run
  ends: its limits, Ctrl-C, SIGTERM); the next run starts there, or `backlog` back if
  that is later, so after a short stop new cases are accepted "now" within a minute
  instead of the whole backlog being replayed; but never later than `OPENING_SPAN` of
  open time before now, so that the opening always has room before now (a restart
  replays at most that span, under its new ids).

A stop (`stop()` true: SIGTERM or Ctrl-C on the command line) saves the cursor, then
gives what is still queued for the broker at most 10 s, as after an error; a run that
reaches its `--events` or `--duration` flushes everything (30 s at most).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from onewindow.calendar_source import load_calendar
from onewindow.codec import SHANGHAI as _CST
from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.security.kafka_auth import department_principal, producer_config
from onewindow.topics import Topics
from producers.publisher import DeliveryFailed, DepartmentPublishers
from producers.scenarios import OPENING_SPAN, ScenarioConfig, ScenarioGenerator
from producers.service_hours import AROUND_THE_CLOCK, OpenTime, ServiceHours, describe

#: the default compression (`Settings.simulate_compression`, ONEWINDOW_SIMULATE_COMPRESSION)
DEMO_COMPRESSION: float = Settings.model_fields["simulate_compression"].default
#: how far back a first run starts by default: a working week of open time under service
#: hours (7 minutes of replay at 300 x), three days of clock time around the clock
BACKLOG_OPEN = timedelta(hours=35)
BACKLOG_AROUND_THE_CLOCK = timedelta(hours=72)


@dataclass
class SimulationConfig:
    rate: float = 5.0                 # events per wall-clock second, at most
    #: simulated seconds per wall-clock second (open seconds under service hours)
    compression: float = DEMO_COMPRESSION
    #: how far back a first run starts, in open time (None: `BACKLOG_OPEN`, or
    #: `BACKLOG_AROUND_THE_CLOCK` with `around_the_clock`)
    backlog: timedelta | None = None
    #: clock time throughout instead of the centre's opening hours
    around_the_clock: bool = False
    seed: int = 2026
    max_events: int | None = None
    max_seconds: float | None = None
    invalid_rate: float = 0.01
    duplicate_rate: float = 0.01
    #: the id namespace of this run (default: from the start time, see `run_id`)
    run_id: str | None = None


_DIGITS36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def run_id(start: datetime) -> str:
    """A run's id namespace: its start time in milliseconds, base 36 (8 characters
    until the year 4453), so runs started a millisecond apart share no id."""
    n = int(start.timestamp() * 1000)
    out = ""
    while True:
        n, d = divmod(n, 36)
        out = _DIGITS36[d] + out
        if n == 0:
            return out


def cursor_path(settings: Settings) -> Path:
    return settings.data_dir / "simulate-cursor.json"


def _cursor_key(settings: Settings) -> str:
    return f"{settings.kafka_bootstrap} {settings.topic_prefix}".strip()


def load_cursor(settings: Settings) -> datetime | None:
    """The simulated time the last run against this cluster and prefix reached, if any
    (an unreadable cursor is no cursor: the run starts `backlog` back)."""
    try:
        saved = json.loads(cursor_path(settings).read_text("utf-8"))
        return datetime.fromisoformat(saved[_cursor_key(settings)])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_cursor(settings: Settings, reached: datetime) -> None:
    """Record `reached` for this cluster and prefix (atomically; best effort)."""
    path = cursor_path(settings)
    try:
        saved = json.loads(path.read_text("utf-8"))
        if not isinstance(saved, dict):
            saved = {}
    except (OSError, ValueError):
        saved = {}
    saved[_cursor_key(settings)] = reached.astimezone(UTC).isoformat()
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(saved, indent=1) + "\n", "utf-8")
        os.replace(tmp, path)


def start_time(now: datetime, backlog: timedelta, cursor: datetime | None, *,
               hours: OpenTime = AROUND_THE_CLOCK,
               opening: timedelta = timedelta(0)) -> datetime:
    """Where a run's simulated clock starts: the last run's cursor, but never more than
    `backlog` of `hours`' open time back nor past `now`; and at least `opening` of open
    time before `now` (room for the scripted opening)."""
    start = hours.back(now, backlog.total_seconds())
    if cursor is not None:
        start = min(max(start, cursor), now)
    if opening > timedelta(0):
        start = min(start, hours.back(now, opening.total_seconds()))
    return start


def service_hours(settings: Settings, config: SimulationConfig) -> OpenTime:
    """The opening hours a run follows: the centre's on the working-day calendar the
    deadlines use (chinesecalendar and the override file), or around the clock."""
    if config.around_the_clock:
        return AROUND_THE_CLOCK
    return ServiceHours(load_calendar(settings.calendar_override_file))


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


class _Stopped(Exception):
    """Ends a run on `stop()`: the publishers are left as after an error (a bounded
    drain, not a full flush), so a stop takes seconds with the broker gone too."""


def simulate(settings: Settings, config: SimulationConfig, *,
             out: TextIO | None = None, now: Callable[[], datetime] | None = None,
             stop: Callable[[], bool] = lambda: False,
             publisher: Any = None, hours: OpenTime | None = None,
             monotonic: Callable[[], float] = time.monotonic,
             sleep: Callable[[float], None] = time.sleep) -> dict[str, int]:
    """Run until `stop()`, `max_events` or `max_seconds`; the counts sent. `publisher`:
    what to send through (default: each department's own `Publisher`); a DeliveryFailed
    from its final flush ends the run (exit status 1 on the command line). The cursor is
    saved however the run ends (module doc). `hours`: the opening hours to follow
    (default: `service_hours`); `now`, `monotonic` and `sleep`: the clocks (a test drives
    a run with fakes)."""
    clock = now or (lambda: datetime.now(UTC))
    start_wall = monotonic()
    started = clock()
    run = config.run_id or run_id(started)
    rng = random.Random(f"{config.seed}/{run}")
    if hours is None:
        hours = service_hours(settings, config)
    backlog = config.backlog if config.backlog is not None else \
        BACKLOG_AROUND_THE_CLOCK if config.around_the_clock else BACKLOG_OPEN
    sim_start = start_time(started, backlog, load_cursor(settings), hours=hours,
                           opening=OPENING_SPAN)
    # Spacing of acceptances so that the event rate roughly matches `rate` (about 15
    # events per case) at this compression (in open minutes under service hours).
    spacing = max(0.05, config.compression * 15 / (config.rate * 60))
    gen = ScenarioGenerator(ScenarioConfig(
        seed=config.seed, start=sim_start, spacing_minutes=spacing, run=run,
        hours=None if config.around_the_clock else hours))
    registry = load_registry(settings.departments_file)
    topics = Topics(settings.topic_prefix)
    pending: list[tuple[datetime, int, dict[str, Any]]] = []
    seq = itertools.count()
    counts = {"sent": 0, "invalid": 0, "duplicates": 0, "cases": 0}
    for case in gen.opening():
        counts["cases"] += 1
        for e in case:
            heapq.heappush(pending, (e["occurred_at"], next(seq), e))
    next_accept = sim_start
    last_report = monotonic()
    sim_now = sim_start
    last_tick = 0.0
    # each department publishes with its own credential (interfaces.md, Kafka)
    pub = publisher if publisher is not None else DepartmentPublishers(
        settings.kafka_bootstrap, topics=topics, departments=registry.codes,
        codec=get_codec(),
        config_for=lambda d: producer_config(settings, department_principal(d)))
    if out is not None:
        pace = "around the clock" if config.around_the_clock else \
            f"in service hours ({describe()})"
        print(f"simulate: run {run}, simulated time from "  # noqa: T201
              f"{sim_start.astimezone(_CST):%Y-%m-%d %H:%M}, {config.compression:g} x "
              f"{pace}", file=out, flush=True)
    try:
        with pub, _keeping_cursor(settings, lambda: sim_now):
            while True:
                elapsed = monotonic() - start_wall
                # open time runs `compression` times the wall clock, never past now
                sim_now = min(clock(), hours.add(sim_now, (elapsed - last_tick)
                                                 * config.compression))
                last_tick = elapsed
                if stop():  # the cursor is the simulated time at the stop itself
                    raise _Stopped
                if config.max_seconds is not None and elapsed >= config.max_seconds:
                    break
                if config.max_events is not None and counts["sent"] >= config.max_events:
                    break
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
                if monotonic() - last_report > 10:
                    last_report = monotonic()
                    save_cursor(settings, sim_now)
                    if out is not None:
                        report = pub.report
                        trouble = f"; broker: {report.broker_error}" \
                            if report.broker_error and not report.total else ""
                        print(f"simulate: {counts['sent']} events, {counts['cases']} cases, "  # noqa: T201
                              f"{report.total} delivered, simulated time "
                              f"{sim_now.astimezone(_CST):%Y-%m-%d %H:%M}{trouble}", file=out,
                              flush=True)
                sleep(0.05)
    except _Stopped:
        pass
    except DeliveryFailed as exc:
        raise DeliveryFailed(f"{pub.report.failures} records not delivered: {exc}") from exc
    return counts


@contextlib.contextmanager
def _keeping_cursor(settings: Settings, reached: Callable[[], datetime]) -> Any:
    """Save the simulated time reached when the run ends, however it ends."""
    try:
        yield
    finally:
        save_cursor(settings, reached())
