"""`onewindow bench-supervision`: the supervisor view's queries on a year of a large
district (issue 16, "Done when").

1. **A year of activity, made by the pipeline's own code** (no Kafka): the scenario
   generator's cases (`producers.scenarios`, seeded) accepted evenly over the 365 days
   to now, as many as make at least ``--events`` input events up to now (what would
   happen later is not there yet; about half a per cent more); delivered in time order, 3 % of them twice (a few minutes
   later), and a few a department got wrong (dated days ahead, not Avro at all,
   published on another department's topic: dead letters). They go through the
   case-state step (`stream_apps.case_processor.CaseProcessor`) in batches of the
   records delivered within a minute (as a worker keeping up with the centre sees them:
   one case state for almost every event) and its activity records through the
   materials app's router and indexer (the links), each with a clock that follows the
   simulated time, so dead letters and conflicts are dated when they happened.
2. **Loaded through the live sink's write path**: every output record through the
   sink's `Ingestor` (the row mapping) into batches of ``--batch-size`` records (the
   sink's default, 2,000), each written by its `UnitOfWork` (`sinks.unit_of_work`:
   rows, the decision-time summary and the offsets in one transaction), in a writer
   thread while the next batch is mapped: the path by which a year of data reaches the
   model in production, record by record (``onewindow rebuild``'s bulk path gives the
   same rows, faster, and is measured by `onewindow bench-rebuild`). Then ``VACUUM
   ANALYZE`` (PostgreSQL; SQLite: ``ANALYZE``), as autovacuum would have done over the
   year.
3. **Every query of the view**, each dataset of ``/api/supervision`` (the functions its
   routes call, `onewindow.read_model.supervision`; the conflicts as the API's first
   page of 50 with the total) over the 30 and the 365 days to today, for every
   department and for one (``--department``), and the home page (today's figures and a
   window's latest cases), ``--repeats`` times each, rounds interleaved: the median and
   the slowest of each, in milliseconds; the machine's load average every 5 s.

Into a fresh database of a throwaway PostgreSQL cluster
(`onewindow_cli.local_postgres`, the one the tests and `bench-rebuild` use), or of
``--postgres-url`` (a server whose role may CREATE DATABASE), or into the empty model at
``--database-url`` (SQLite or PostgreSQL, kept); ``--no-load`` measures the model at
``--database-url`` as it is. The results go to ``--out`` as JSON. Speed is measured
here, never asserted by a timed test.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import random
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, select, text

from onewindow.calendar_source import load_calendar
from onewindow.cli_options import positive_int, postgres_url, writable_dir
from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.domain.calendar import WorkingCalendar
from onewindow.domain.deadline import local_date
from onewindow.read_model import supervision
from onewindow.read_model.engine import make_engine, shown_url
from onewindow.read_model.supervision import Scope
from onewindow.read_model.tables import CASES
from onewindow.security.id_key import with_new_key
from onewindow.security.id_protection import IdProtector
from onewindow.security.kafka_auth import SINK, CredentialStore
from onewindow.topics import Topics, partition_for
from onewindow_cli.bench.reporting import loadavg
from onewindow_cli.local_postgres import LocalPostgres, create_database, drop_database
from onewindow_cli.soak import machine_facts
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from sinks.bootstrap import build_sink
from sinks.rebuild import table_counts
from sinks.rows import Batch
from stream_apps.case_processor import CaseProcessor
from stream_apps.materials_processor import MaterialIndexer, MaterialRouter
from stream_apps.records import InRecord, OutRecord

__all__ = ["QUERIES", "BenchOptions", "load_year", "measure", "register", "render", "run"]

#: the days of the simulated year, and the periods measured (days ending today)
YEAR = 365
PERIODS = (30, 365)
#: partitions the output records are numbered on (the consumed offsets, as the sink's)
PARTITIONS = 6
#: what a department gets wrong, per input event: sent twice; dated ahead; not Avro;
#: on another department's topic
DUPLICATE, FUTURE, GARBAGE, WRONG_TOPIC = 0.03, 0.002, 0.0005, 0.0005
#: cases whose events tell how many cases make the events asked for
PROBE = 2000
#: the window whose cases the home page lists
WINDOW = "W01"
#: the case-state step's batches: the records delivered within a minute, at most 500 (as
#: a worker keeping up with a centre's traffic sees them: a few records a batch)
BATCH_SPAN, BATCH_MAX = timedelta(minutes=1), 500

Query = Callable[[Connection, Scope, datetime, WorkingCalendar], Any]

#: every dataset of /api/supervision: the function its route calls
QUERIES: dict[str, Query] = {
    "cases": lambda c, s, t, _cal: supervision.case_flow(c, s, t),
    "open-cases": lambda c, s, _t, _cal: supervision.open_by_status(c, s),
    "sla": supervision.sla_trend,
    "decision-times": lambda c, s, _t, _cal: supervision.decision_times(c, s),
    "avoidable": lambda c, s, _t, _cal: supervision.avoidable_submissions(c, s),
    "resubmitted": lambda c, s, _t, _cal: supervision.resubmitted_documents(c, s),
    "conflicts": lambda c, s, _t, _cal: supervision.conflict_list(c, s, limit=50),
    "dead-letters": lambda c, s, _t, _cal: supervision.dead_letter_counts(c, s),
    "services": lambda c, s, _t, _cal: supervision.services(c, s),
}
#: the home page (GET /api/home): one query whatever the period
HOME = "home"


@dataclass
class BenchOptions:
    events: int = 2_050_000
    seed: int = 16
    repeats: int = 5
    batch_size: int = 2000
    department: str = "scjgj"
    out_dir: Path = Path("bench-results")
    postgres_url: str | None = None
    database_url: str | None = None
    load: bool = True


# --------------------------------------------------------------------------- the year


@dataclass
class _Clock:
    """The simulated time: the delivery time of the latest record handed to the step."""

    now: datetime


def _sim_settings(settings: Settings, tmp: Path, url: str) -> Settings:
    """The settings of the load: ``url``, an ephemeral ID hash key, and a throwaway
    credential for the sink's principal (``build_sink`` builds a consumer configuration;
    no broker is ever reached)."""
    CredentialStore(tmp / "credentials").ensure(SINK)
    return with_new_key(settings).model_copy(update={
        "database_url": url, "kafka_credentials_dir": tmp / "credentials",
        "topic_prefix": "bench."})


def _cases_for(events: int, seed: int) -> int:
    """How many cases over the year give at least ``events`` input events up to its end:
    the events a case has and how long after its acceptance they come, from the first
    :data:`PROBE` cases of the same seed (the same cases the year starts with: a case's
    events do not depend on when it is accepted), the events after the end left out
    (a case accepted ``d`` days before the end loses those later than ``d`` days), and
    half a per cent more."""
    probe = ScenarioGenerator(ScenarioConfig(seed=seed))
    sizes, offsets = [], []
    for _ in range(PROBE):
        case = probe.case()
        sizes.append(len(case))
        offsets += [(e["occurred_at"] - case[0]["occurred_at"]) / timedelta(days=1)
                    for e in case]
    kept = 1 - statistics.fmean(offsets) / YEAR
    return max(1, math.ceil(events / (statistics.fmean(sizes) * kept) * 1.005))


def _inputs(settings: Settings, topics: Topics, events: int, seed: int, end: datetime,
            made: dict[str, int]) -> Iterator[tuple[datetime, InRecord]]:
    """The input records of the year to ``end``, in delivery order (module docstring,
    step 1); counts what was made into ``made``."""
    codec = get_codec()
    depts = sorted(load_registry(settings.departments_file).codes)
    rng = random.Random(seed)
    cases = _cases_for(events, seed)
    gen = ScenarioGenerator(ScenarioConfig(seed=seed, start=end - timedelta(days=YEAR),
                                           spacing_minutes=YEAR * 1440 / cases))
    heap: list[tuple[datetime, int, str, bytes | None, bytes]] = []
    seq = count()
    offsets: dict[str, int] = {}

    def push(at: datetime, dept: str, key: bytes | None, value: bytes) -> None:
        heapq.heappush(heap, (at, next(seq), dept, key, value))

    def pop() -> tuple[datetime, InRecord]:
        at, _n, dept, key, value = heapq.heappop(heap)
        topic = topics.input(dept)
        offset = offsets.get(topic, 0)
        offsets[topic] = offset + 1
        return at, InRecord(topic, 0, offset, key, value, int(at.timestamp() * 1000))

    for _ in range(cases):
        case = gen.case()
        accepted = case[0]["occurred_at"]
        if accepted > end:
            break
        made["cases"] += 1
        for e in case:
            at = e["occurred_at"]
            if at > end:
                continue  # not happened yet
            key, value = e["case_id"].encode(), codec.encode(e)
            push(at, e["department"], key, value)
            made["input_events"] += 1
            roll = rng.random()
            if roll < DUPLICATE:
                push(at + timedelta(seconds=rng.uniform(1, 600)), e["department"], key, value)
                made["sent_twice"] += 1
            elif roll < DUPLICATE + FUTURE:
                ahead = dict(e, event_id=f"{e['event_id']}-ahead", occurred_at=at + timedelta(days=3))
                push(at, e["department"], key, codec.encode(ahead))
                made["dated_ahead"] += 1
            elif roll < DUPLICATE + FUTURE + GARBAGE:
                push(at, e["department"], key, b"\x00not an event")
                made["not_avro"] += 1
            elif roll < DUPLICATE + FUTURE + GARBAGE + WRONG_TOPIC:
                other = rng.choice([d for d in depts if d != e["department"]])
                wrong = dict(e, event_id=f"{e['event_id']}-wrong")
                push(at, other, key, codec.encode(wrong))
                made["wrong_topic"] += 1
        # no later case has an event before its acceptance: what came before is final
        while heap and heap[0][0] <= accepted:
            yield pop()
    while heap:
        yield pop()


def _outputs(settings: Settings, topics: Topics, opts: BenchOptions, end: datetime,
             made: dict[str, int], phases: dict[str, float]) -> Iterator[list[OutRecord]]:
    """The output records of the year, one list per batch of the case-state step (and
    the links its activity records gave), as the stream apps would publish them."""
    codec = get_codec()
    registry = load_registry(settings.departments_file)
    ids = IdProtector.from_settings(settings)
    clock = _Clock(end - timedelta(days=YEAR))
    proc = CaseProcessor(codec=codec, topics=topics, departments=registry.codes,
                         counters=registry.counter_codes,
                         calendar=load_calendar(settings.calendar_override_file), ids=ids,
                         clock=lambda: clock.now)
    router = MaterialRouter(codec=codec, index_topic=f"{topics.prefix}bench-index", ids=ids)
    indexer = MaterialIndexer(codec=codec, links_topic=topics.material_links,
                              clock=lambda: clock.now)
    states: dict[str, bytes] = {}
    buckets: dict[str, bytes] = {}
    inputs = _inputs(settings, topics, opts.events, opts.seed, end, made)
    activity = topics.case_activity
    held = next(inputs, None)
    while held is not None:
        t0 = time.perf_counter()
        batch: list[InRecord] = []
        first = held[0]
        while held is not None and held[0] - first <= BATCH_SPAN and len(batch) < BATCH_MAX:
            clock.now = held[0]
            batch.append(held[1])
            held = next(inputs, None)
        res = proc.process(batch, lambda cid, _r: states.get(cid))
        for cid, (state, _r) in res.states.items():
            states[cid] = state
        outputs = list(res.outputs)
        acts = [InRecord(o.topic, 0, k, o.key, o.value, batch[-1].timestamp_ms)
                for k, o in enumerate(outputs) if o.topic == activity]
        if acts:
            routed = router.route(acts).outputs
            indexed = indexer.process(
                [InRecord(o.topic, 0, k, o.key, o.value, batch[-1].timestamp_ms)
                 for k, o in enumerate(routed)], lambda key, _r: buckets.get(key))
            for key, (bucket, _r) in indexed.buckets.items():
                buckets[key] = bucket
            outputs.extend(indexed.outputs)
        phases["pipeline"] += time.perf_counter() - t0
        yield outputs


def load_year(settings: Settings, engine: Engine, opts: BenchOptions, end: datetime,
              say: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Make the year to ``end`` and write it into the empty model on ``engine`` through
    the sink's ingest and unit of work (module docstring, steps 1 and 2); what was
    made, the records, the seconds of each step and the load average meanwhile."""
    parts = build_sink(settings, engine=engine)
    with engine.connect() as conn:
        if conn.execute(select(CASES.c.case_id).limit(1)).first() is not None:
            raise RuntimeError("the model to load into holds cases already: give an empty one")
    topics = parts.topics
    made: dict[str, int] = dict.fromkeys(("cases", "input_events", "sent_twice",
                                          "dated_ahead", "not_avro", "wrong_topic"), 0)
    phases = dict.fromkeys(("pipeline", "map", "write", "wait_write"), 0.0)
    results: dict[str, int] = {}
    offsets: dict[tuple[str, int], int] = {}
    records = 0
    t0 = time.perf_counter()

    def write(batch: Batch) -> None:
        started = time.perf_counter()
        parts.uow.write(batch)
        phases["write"] += time.perf_counter() - started

    batch = Batch()
    writing: Future[None] | None = None
    last_say = time.monotonic()
    with ThreadPoolExecutor(1, thread_name_prefix="bench-writer") as writer:
        for outputs in _outputs(settings, topics, opts, end, made, phases):
            started = time.perf_counter()
            for o in outputs:
                partition = 0 if o.key is None else partition_for(o.key, PARTITIONS)
                offset = offsets.get((o.topic, partition), 0)
                offsets[(o.topic, partition)] = offset + 1
                result = parts.ingestor.add(batch, o.topic, partition, offset, o.value)
                results[result] = results.get(result, 0) + 1
                records += 1
                if len(batch) >= opts.batch_size:
                    phases["map"] += time.perf_counter() - started
                    writing = _submit(writer, writing, write, batch, phases)
                    batch = Batch()
                    started = time.perf_counter()
            phases["map"] += time.perf_counter() - started
            if time.monotonic() - last_say > 60:
                last_say = time.monotonic()
                say(f"  {made['input_events']:,} input events, {records:,} output records "
                    f"written or in hand ({time.perf_counter() - t0:,.0f} s)")
        if len(batch):
            writing = _submit(writer, writing, write, batch, phases)
        if writing is not None:
            writing.result()
    seconds = time.perf_counter() - t0
    started = time.perf_counter()
    _analyze(engine)
    return {"made": made, "records": records, "results": results, "seconds": seconds,
            "records_per_s": records / seconds if seconds else 0.0,
            "analyze_s": time.perf_counter() - started, "phases_s": phases}


def _submit(writer: ThreadPoolExecutor, writing: Future[None] | None,
            write: Callable[[Batch], None], batch: Batch, phases: dict[str, float]
            ) -> Future[None]:
    """The batch to the writer thread once the previous one is written (its error, if
    any, raised here): at most one batch written while the next is mapped."""
    if writing is not None:
        started = time.perf_counter()
        writing.result()
        phases["wait_write"] += time.perf_counter() - started
    return writer.submit(write, batch)


def _analyze(engine: Engine) -> None:
    """The planner's statistics (and PostgreSQL's visibility map) as autovacuum keeps
    them on a model that has been written for a year."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))


# --------------------------------------------------------------------------- the queries


class _LoadSampler:
    """The 1-minute load average every ``every`` seconds, in a thread, while in use."""

    def __init__(self, every: float = 5.0) -> None:
        self.every = every
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loadavg", daemon=True)

    def _run(self) -> None:
        while True:
            now = loadavg()
            if now:
                self.samples.append(float(now[0]))
            if self._stop.wait(self.every):
                return

    def __enter__(self) -> _LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, float]:
        s = self.samples or [0.0]
        return {"min": min(s), "median": statistics.median(s), "max": max(s)}


def _scopes(today: date, department: str) -> dict[str, Scope]:
    out = {}
    for days in PERIODS:
        first = today - timedelta(days=days - 1)
        out[f"{days}d"] = Scope(first, today)
        out[f"{days}d_{department}"] = Scope(first, today, department=department)
    return out


def measure(engine: Engine, now: datetime, calendar: WorkingCalendar, repeats: int,
            department: str) -> dict[str, Any]:
    """Every query of :data:`QUERIES` for every scope (30 and 365 days, every department
    and ``department``) and the home page, ``repeats`` rounds (each query on a connection
    of the pool, in its own transaction, as a request of the app); per query and scope
    the median and the slowest in ms, and how many rows it gave."""
    # the API's datasets (FastAPI: imported when measuring, not by every command line)
    from counter.supervision_api import DATASETS  # noqa: PLC0415

    missing = set(DATASETS) ^ set(QUERIES)
    if missing:
        raise RuntimeError(f"datasets of /api/supervision without a benchmark query, or "
                           f"the reverse: {sorted(missing)}")
    scopes = _scopes(local_date(now), department)
    times: dict[str, dict[str, list[float]]] = {q: {s: [] for s in scopes} for q in QUERIES}
    times[HOME] = {"now": []}
    rows: dict[str, dict[str, int]] = {q: {} for q in times}
    for _ in range(repeats):
        for name, query in QUERIES.items():
            for label, scope in scopes.items():
                elapsed, got = _timed(engine, lambda c, q=query, s=scope: q(c, s, now, calendar))
                times[name][label].append(elapsed)
                rows[name][label] = _size(got)
        elapsed, got = _timed(engine, lambda c: (
            supervision.today_figures(c, now, calendar, WINDOW),
            supervision.window_cases(c, now, WINDOW)))
        times[HOME]["now"].append(elapsed)
        rows[HOME]["now"] = len(got[1])
    return {"scopes": {k: {"from": s.first.isoformat(), "to": s.last.isoformat(),
                           "department": s.department} for k, s in scopes.items()},
            "median_ms": {q: {s: statistics.median(v) for s, v in by.items()}
                          for q, by in times.items()},
            "max_ms": {q: {s: max(v) for s, v in by.items()} for q, by in times.items()},
            "rows": rows, "runs_ms": times}


def _timed(engine: Engine, call: Callable[[Connection], Any]) -> tuple[float, Any]:
    with engine.connect() as conn:
        started = time.perf_counter()
        got = call(conn)
        elapsed = (time.perf_counter() - started) * 1000
        conn.rollback()
    return elapsed, got


def _size(got: Any) -> int:
    """Rows an answer has (the conflicts: their total)."""
    if isinstance(got, tuple):
        return int(got[1])
    return len(got)


def _latest_acceptance(engine: Engine) -> datetime:
    with engine.connect() as conn:
        latest = conn.execute(select(func.max(CASES.c.accepted_at))).scalar_one()
    if latest is None:
        raise RuntimeError("the model holds no accepted case: nothing to measure")
    return latest


# --------------------------------------------------------------------------- the run


def run(settings: Settings, opts: BenchOptions,
        say: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Load (unless ``opts.load`` is false) and measure (module docstring); returns the
    summary, also written as JSON to ``opts.out_dir``."""
    facts = machine_facts()
    tmp = Path(tempfile.mkdtemp(prefix="onewindow-bench-supervision-"))
    pg: LocalPostgres | None = None
    server, db = opts.postgres_url, None
    summary: dict[str, Any] = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                               "machine": facts, "events": opts.events, "seed": opts.seed,
                               "repeats": opts.repeats, "batch_size": opts.batch_size,
                               "department": opts.department}
    try:
        url = opts.database_url
        if url is None:
            if server is None:
                pg = LocalPostgres()
                server = pg.start()
            db = f"bench_supervision_{uuid.uuid4().hex[:8]}"
            url = create_database(server, db)
        engine = make_engine(url)  # a reader, as the counter app's
        summary["database"] = engine.dialect.name
        try:
            if opts.load:
                end = datetime.now(UTC).replace(microsecond=0)
                say(f"loading a year to {end.isoformat()} into "
                    f"{shown_url(engine.url)}")
                writer = make_engine(url, writer=True)  # the sink's
                try:
                    with _LoadSampler() as sampler:
                        summary["load"] = load_year(_sim_settings(settings, tmp, url),
                                                    writer, opts, end, say)
                finally:
                    writer.dispose()
                summary["load"]["loadavg"] = sampler.summary()
                now = end
            else:
                now = _latest_acceptance(engine)
            summary["now"] = now.isoformat()
            summary["tables"] = table_counts(engine)
            say(f"measuring at {now.isoformat()}: {summary['tables']}")
            with _LoadSampler() as sampler:
                summary["queries"] = measure(
                    engine, now, load_calendar(settings.calendar_override_file),
                    opts.repeats, opts.department)
            summary["queries"]["loadavg"] = sampler.summary()
        finally:
            engine.dispose()
    finally:
        if db is not None and server is not None:
            drop_database(server, db)
        if pg is not None:
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    path = opts.out_dir / f"bench-supervision-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(summary, indent=2, default=str))
    summary["path"] = str(path)
    return summary


def render(summary: dict[str, Any]) -> str:
    """The report: the model, how it was loaded, and one line per query with its median
    (and slowest) in ms for each scope, and the load average meanwhile."""
    q = summary["queries"]
    dept = summary["department"]
    labels = [(f"{d}d", f"{d} days") for d in PERIODS]
    cols = [c for k, name in labels for c in ((k, name), (f"{k}_{dept}", f"{name}, {dept}"))]
    tables = summary["tables"]
    lines = [f"supervisor view on {summary['database']} at {summary['now']}: "
             f"{tables.get('timeline_entries', 0):,} timeline entries, "
             f"{tables.get('dead_letters', 0):,} dead letters, {tables.get('cases', 0):,} "
             f"cases, {tables.get('tasks', 0):,} tasks ({tables.get('task_decisions', 0):,} "
             f"decided), {tables.get('materials', 0):,} materials, "
             f"{tables.get('material_links', 0):,} links"]
    load = summary.get("load")
    if load is not None:
        made, ph, la = load["made"], load["phases_s"], load["loadavg"]
        lines.append(
            f"  loaded: {made['input_events']:,} input events of {made['cases']:,} cases "
            f"({made['sent_twice']:,} sent twice, "
            f"{made['dated_ahead'] + made['not_avro'] + made['wrong_topic']:,} wrong) -> "
            f"{load['records']:,} output records through the sink's unit of work in "
            f"{load['seconds']:,.0f} s ({load['records_per_s']:,.0f} records/s; step and "
            f"links {ph['pipeline']:,.0f} s, row mapping {ph['map']:,.0f} s, writing "
            f"{ph['write']:,.0f} s beside them, {ph['wait_write']:,.0f} s waited for); "
            f"VACUUM ANALYZE {load['analyze_s']:,.0f} s; load average {la['min']:.1f}-"
            f"{la['max']:.1f} (median {la['median']:.1f})")
    la = q["loadavg"]
    lines.append(f"  queries: median (slowest) of {summary['repeats']} runs, ms; load "
                 f"average {la['min']:.1f}-{la['max']:.1f} (median {la['median']:.1f})")
    lines.append(f"  {'dataset':16}" + "".join(f"{name:>24}" for _k, name in cols))
    for name in QUERIES:
        med, top = q["median_ms"][name], q["max_ms"][name]
        lines.append(f"  {name:16}" + "".join(
            f"{f'{med[k]:,.0f} ({top[k]:,.0f})':>24}" for k, _n in cols))
    home_med, home_max = q["median_ms"][HOME]["now"], q["max_ms"][HOME]["now"]
    lines.append(f"  {HOME:16}{f'{home_med:,.0f} ({home_max:,.0f})':>24}  (today, window "
                 f"{WINDOW}; no period)")
    over = sorted((name, k) for name in QUERIES for k, _n in cols
                  if q["median_ms"][name][k] > 500)
    lines.append("  over 500 ms: " + (", ".join(f"{n} {k}" for n, k in over) or "none"))
    lines.append(f"results: {summary['path']}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the command


def _model_problem(url: str) -> str | None:
    """Why the model at ``url`` cannot be measured as it is (None: it can): the database
    cannot be opened, or holds no read model with cases."""
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

    try:
        engine = make_engine(url)
    except (SQLAlchemyError, ValueError) as exc:
        return f"not a database URL: {type(exc).__name__}"
    try:
        with engine.connect() as conn:
            if conn.execute(select(func.count()).select_from(CASES)).scalar_one() == 0:
                return "the read model there holds no case: load one first (without --no-load)"
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).splitlines()[0]
        return f"no read model to measure there ({reason})"
    finally:
        engine.dispose()
    return None


def cmd_bench_supervision(args: argparse.Namespace) -> int:
    from onewindow.cli_options import settings_from  # noqa: PLC0415 - the environment's

    if args.no_load and args.database_url is None:
        raise SystemExit("--no-load measures the model at --database-url: give one")
    settings = settings_from(args)
    codes = load_registry(settings.departments_file).codes
    if args.department not in codes:
        raise SystemExit(f"--department {args.department!r} is not a known department "
                         f"({', '.join(sorted(codes))})")
    if args.no_load:
        problem = _model_problem(args.database_url)
        if problem is not None:
            raise SystemExit(f"--no-load: {problem}")
    opts = BenchOptions(events=args.events, seed=args.seed, repeats=args.repeats,
                        batch_size=args.batch_size, department=args.department,
                        out_dir=Path(args.out), postgres_url=args.postgres_url,
                        database_url=args.database_url, load=not args.no_load)
    summary = run(settings, opts, say=lambda m: print(m, flush=True))  # noqa: T201
    print(render(summary))  # noqa: T201
    return 0


def register(sub: Any) -> None:
    """Add `bench-supervision` to `sub` (an argparse subparsers action)."""
    p = sub.add_parser("bench-supervision",
                       help="the supervisor view's queries on a year of a large district "
                            "loaded through the sink (median ms of each)")
    p.add_argument("--events", type=positive_int, default=2_050_000,
                   help="at least this many input events over the year (about 0.5 %% more; "
                        "default 2050000)")
    p.add_argument("--seed", type=int, default=16)
    p.add_argument("--repeats", type=positive_int, default=5,
                   help="runs of each query and scope (default 5)")
    p.add_argument("--batch-size", dest="batch_size", type=positive_int, default=2000,
                   help="records per transaction of the sink's unit of work (default 2000, "
                        "the sink's)")
    p.add_argument("--department", default="scjgj",
                   help="the one department measured beside all (default scjgj)")
    p.add_argument("--postgres-url", dest="postgres_url", type=postgres_url, default=None,
                   help="a PostgreSQL server whose role may CREATE DATABASE (default: a "
                        "throwaway cluster from the machine's binaries)")
    p.add_argument("--database-url", dest="database_url", default=None,
                   help="load into (or with --no-load, measure) the model at this URL "
                        "(SQLite or PostgreSQL), which is kept")
    p.add_argument("--no-load", dest="no_load", action="store_true",
                   help="measure the model at --database-url as it is")
    p.add_argument("--out", type=writable_dir, default="bench-results",
                   help="directory of the JSON results")
    p.set_defaults(func=cmd_bench_supervision)
