"""`onewindow bench --all`: every path of issue 15 in one run and one table.

The benchmarks behind it are the commands that measure each path on its own, called
in turn with the same number of rounds, each on a broker of its own (or the configured
one) and in the same process tree:

* the case-state paths (`onewindow_cli.bench.case_state`): the plain confluent-kafka
  consumer, the do-nothing Faust agent, the pure `CaseProcessor`, the Faust worker end
  to end, its p99 latency at 1,000 events/s and its restart after SIGKILL holding
  100,000 cases;
* the pure per-event step against the code of the commit before the lean step
  (`onewindow bench-step`, same records, the floor of fastavro's decode beside it);
* `onewindow reprocess` against a plain read of the same input topics;
* `onewindow rebuild` into SQLite and PostgreSQL against a plain read of the same output
  topics;
* the materials worker (`onewindow bench-materials`): materials/s, links equal to the
  pure rules, the largest bucket.

:func:`rows` turns their summaries into the table's rows, each with its target from
issue 15 and whether it is met; :func:`render` prints them. Memory with a million cases
is `onewindow bench --scale` (hours, not part of this run). Speed is measured here,
never asserted by a timed test.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onewindow.config import Settings

__all__ = ["OverviewOptions", "Row", "render", "rows", "run"]


@dataclass(frozen=True)
class OverviewOptions:
    """Sizes of each part (the defaults are each command's, rounds shared)."""

    rounds: int = 3
    case_events: int = 50_000
    hold_cases: int = 100_000
    step_events: int = 20_000
    reprocess_events: int = 100_000
    rebuild_events: int = 60_000
    materials: int = 20_000
    postgres_url: str | None = None
    out_dir: Path = Path("bench-results")
    profile_dir: Path | None = None
    #: a broker was named (``--bootstrap``): the materials part uses it, as the others
    #: do when ONEWINDOW_KAFKA_BOOTSTRAP is set
    external_broker: bool = False


@dataclass(frozen=True)
class Row:
    """One line of the table: the value measured (``None``: not measured), its unit,
    what it is compared with, the issue's target (``None``: a baseline, no target) and
    whether it holds (``None`` without a target)."""

    path: str
    value: float | None
    unit: str
    against: str
    target: str | None
    met: bool | None


def run(settings: Settings, opts: OverviewOptions,
        say: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Every part in turn (module docstring); returns their summaries by part:
    ``case_state``, ``step``, ``reprocess``, ``rebuild``, ``materials``. Raises what the
    part raises (a path whose results differ from the pure rules stops the run)."""
    # each part imports its own dependencies (SQLAlchemy, Faust ...) only when it runs
    from onewindow_cli.bench import case_state, step  # noqa: PLC0415
    from onewindow_cli.bench import materials as bench_materials  # noqa: PLC0415
    from onewindow_cli.bench import rebuild as bench_rebuild  # noqa: PLC0415
    from onewindow_cli.bench import reprocess as bench_reprocess  # noqa: PLC0415

    out: dict[str, Any] = {}
    say(f"1/5 case-state paths: {opts.case_events:,} events x {opts.rounds} rounds ...")
    out["case_state"] = case_state.run(
        settings, events=opts.case_events, rounds=opts.rounds, out_dir=opts.out_dir,
        hold=opts.hold_cases, profile_dir=opts.profile_dir)
    _stamp(out["case_state"])
    say(f"2/5 the pure step against {step.PRE_LEAN_COMMIT[:10]}: {opts.step_events:,} "
        "records ...")
    out["step"] = step.run(events=opts.step_events, rounds=opts.rounds,
                           out_dir=opts.out_dir)
    _stamp(out["step"])
    say(f"3/5 onewindow reprocess: {opts.reprocess_events:,} events ...")
    out["reprocess"] = bench_reprocess.run(settings, bench_reprocess.BenchOptions(
        events=opts.reprocess_events, rounds=opts.rounds, out_dir=opts.out_dir,
        profile_dir=opts.profile_dir))
    _stamp(out["reprocess"])
    say(f"4/5 onewindow rebuild: {opts.rebuild_events:,} input events' records ...")
    out["rebuild"] = bench_rebuild.run(settings, bench_rebuild.BenchOptions(
        events=opts.rebuild_events, rounds=opts.rounds, out_dir=opts.out_dir,
        postgres_url=opts.postgres_url, profile_dir=opts.profile_dir))
    _stamp(out["rebuild"])
    say(f"5/5 the materials worker: {opts.materials:,} materials ...")
    out["materials"] = bench_materials.run(settings, bench_materials.BenchOptions(
        materials=opts.materials, out_dir=str(opts.out_dir), rounds=opts.rounds,
        external=opts.external_broker))
    _stamp(out["materials"])
    return out


def _stamp(summary: dict[str, Any]) -> None:
    """The load average (1 min) as the part ended: the machines are shared."""
    summary["loadavg_1min_at_end"] = os.getloadavg()[0]


def _at_least(value: float | None, target: float) -> bool | None:
    return None if value is None else value >= target


def rows(parts: dict[str, Any]) -> list[Row]:
    """The table's rows from :func:`run`'s summaries (a part missing gives no rows).
    Targets are issue 15's: the pure step 5 x its baseline, the worker 0.75 of the
    do-nothing agent, p99 under 250 ms at 1,000 events/s, restart under 5 s holding
    100,000 cases, reprocess 50,000 events/s, rebuild 50,000 records/s into PostgreSQL
    and 20,000 into SQLite, 5,000 materials/s."""
    out: list[Row] = []
    cs = parts.get("case_state")
    if cs is not None:
        med = cs["median_eps"]
        plain = med["plain_consumer_eps"]
        out += [
            Row("plain confluent-kafka consumer", plain, "events/s", "1", None, None),
            Row("do-nothing Faust agent, same settings", med["faust_noop_eps"], "events/s",
                f"{med['faust_noop_eps'] / plain:.3f} x plain", None, None),
            Row("pure CaseProcessor, no Kafka", med["pure_processor_eps"], "events/s",
                f"{med['pure_processor_eps'] / plain:.3f} x plain", None, None),
        ]
        ratio = cs["ratio_worker_to_noop_per_round"]
        out.append(Row("Faust worker, end to end", med["faust_worker_eps"], "events/s",
                       f"{ratio:.2f} x the agent (within each round)", ">= 0.75 x the agent",
                       ratio >= 0.75))
        p99 = med["latency_p99_s"] * 1000
        rate = cs["latency_phase"]["rate_eps"]
        out.append(Row(f"latency p99, input to case state, {rate:,.0f} events/s", p99, "ms",
                       "", "< 250 ms", p99 < 250))
        held = cs["held_cases"]
        kept = med["recovery_kept_s"]
        out.append(Row(f"restart after SIGKILL, {held:,} cases held", kept, "s", "",
                       "< 5 s with 100,000 held", kept < 5 if held >= 100_000 else None))
    st = parts.get("step")
    if st is not None:
        cur = st["current"]["step_us"]
        speedup = st.get("speedup")
        against = (f"{speedup:.2f} x faster than {str(st['baseline_ref'])[:10]}"
                   if speedup is not None else "no baseline")
        out.append(Row("pure step per event (CPU)", cur, "µs", against,
                       ">= 5 x the baseline", _at_least(speedup, 5.0)))
    rp = parts.get("reprocess")
    if rp is not None:
        med = rp["median_eps"]
        for jobs in rp["jobs"]:
            eps = med[f"reprocess_jobs{jobs}"]
            out.append(Row(f"onewindow reprocess --jobs {jobs}", eps, "events/s",
                           f"{rp['ratio_to_plain'][f'reprocess_jobs{jobs}']:.3f} x a plain "
                           "read", ">= 50,000", eps >= 50_000))
    rb = parts.get("rebuild")
    if rb is not None:
        med = rb["median_rps"]
        for kind, label, target in (("sqlite", "SQLite", 20_000),
                                    ("postgresql", "PostgreSQL", 50_000)):
            for jobs in rb["jobs"]:
                key = kind if jobs == 1 else f"{kind}_jobs{jobs}"
                if key not in med:
                    continue
                out.append(Row(f"onewindow rebuild into {label}"
                               + (f" --jobs {jobs}" if jobs > 1 else ""), med[key],
                               "records/s", f"{rb['ratio_to_plain'][key]:.3f} x a plain read",
                               f">= {target:,}", med[key] >= target))
    mt = parts.get("materials")
    if mt is not None and "materials_per_second" in mt:
        mps = mt["materials_per_second"]
        ix = mt.get("index", {})
        out.append(Row("materials worker", mps, "materials/s",
                       f"largest bucket {ix.get('largest_bucket', '?')}, links equal to the "
                       f"pure rules: {mt.get('equal_to_pure_rules')}", ">= 5,000",
                       mps >= 5_000 and bool(mt.get("equal_to_pure_rules"))))
    return out


def render(parts: dict[str, Any]) -> str:
    """The one table `onewindow bench --all` prints, then where each part's results
    (and profiles) are."""
    table = rows(parts)
    lines = [f"every path of issue 15, medians of each part's rounds "
             f"({', '.join(parts)}):",
             f"  {'path':52} {'value':>12} {'unit':11} {'target':>22} {'met':>4}  against"]
    for r in table:
        value = "-" if r.value is None else f"{r.value:,.1f}" if r.value < 100 \
            else f"{r.value:,.0f}"
        met = "" if r.met is None else ("yes" if r.met else "NO")
        lines.append(f"  {r.path:52} {value:>12} {r.unit:11} {r.target or '':>22} {met:>4}  "
                     f"{r.against}")
    loads = [f"{name} {summary['loadavg_1min_at_end']:.1f}" for name, summary in parts.items()
             if isinstance(summary, dict) and "loadavg_1min_at_end" in summary]
    if loads:
        lines.append("  load average (1 min) as each part ended: " + ", ".join(loads))
    unmet = [r.path for r in table if r.met is False]
    lines.append("  targets not met: " + ("; ".join(unmet) if unmet else "none"))
    for name, summary in parts.items():
        if isinstance(summary, dict) and summary.get("path"):
            lines.append(f"  results of {name}: {summary['path']}")
    return "\n".join(lines)
