"""The pure parts of `onewindow bench --brokers 3 --workers 1,2` (onewindow_cli/bench/
cluster.py): the worker counts, the runs of a round, the gap and resumption measures,
the medians and the report. The whole command needs a three-node cluster and minutes of
failovers (a worker's partitions move after its 15 s session), so it is run by hand, not
in the suite (docs/benchmarks.md); its option checks are here."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from onewindow.errors import ConfigError
from onewindow_cli.bench.cluster import (
    RunSpec,
    Seen,
    longest_gap,
    parse_workers,
    plan,
    refuse_other_options,
    render,
    resumed,
    summarise,
)
from onewindow_cli.cli import build_parser


def test_worker_counts_are_distinct_whole_numbers_within_the_local_bound() -> None:
    assert parse_workers("1,2") == (1, 2)
    assert parse_workers(" 2 , 1 ") == (2, 1)
    assert parse_workers("3") == (3,)
    for bad, why in (("1,x", "'x' is not a whole number"), ("0,2", "0 workers"),
                     ("17", "17 workers"), ("2,2", "2 is given twice"), ("", "''")):
        with pytest.raises(argparse.ArgumentTypeError, match=why):
            parse_workers(bad)


def test_a_round_measures_each_count_with_and_without_standbys_and_one_broker_pause() -> None:
    assert plan((1, 2)) == [RunSpec(1, 0, broker=True), RunSpec(2, 1, failover=True),
                            RunSpec(2, 0, failover=True)]
    # no one-worker run asked for: the broker pause gets a run of its own
    assert plan((2, 3)) == [RunSpec(2, 1, failover=True), RunSpec(3, 1, failover=True),
                            RunSpec(2, 0, failover=True), RunSpec(3, 0, failover=True),
                            RunSpec(1, 0, throughput=False, broker=True)]
    assert plan((1,)) == [RunSpec(1, 0, broker=True)]
    assert [r.key for r in plan((1, 2))] == ["w1-s0", "w2-s1", "w2-s0"]


def test_the_longest_gap_counts_the_window_edges() -> None:
    assert longest_gap([1.0, 1.5, 4.0, 4.2], 0.5, 5.0) == (2.5, 1.5)
    # order does not matter; times outside the window are ignored
    assert longest_gap([4.2, -3.0, 1.0, 4.0, 1.5, 99.0], 0.5, 5.0) == (2.5, 1.5)
    # nothing after the last output until the end: that is the gap
    assert longest_gap([1.0, 1.2], 1.0, 10.0) == pytest.approx((8.8, 1.2))
    # nothing at all: the whole window
    assert longest_gap([], 2.0, 3.0) == (1.0, 2.0)
    with pytest.raises(ValueError, match="before it starts"):
        longest_gap([], 3.0, 2.0)


def test_a_partition_resumes_with_the_first_record_written_after_the_kill() -> None:
    seen = [Seen(0, 9.0, 9.1), Seen(1, 9.5, 10.2),  # written before the kill at 10
            Seen(1, 25.0, 25.3), Seen(0, 26.0, 26.1), Seen(1, 27.0, 27.1),
            Seen(2, 28.0, 28.5)]
    assert resumed(seen, [0, 1], 10.0) == {1: 25.3, 0: 26.1}
    assert resumed(seen, [3], 10.0) == {}  # not back yet
    assert resumed(seen, [0, 1, 2], 30.0) == {}


def test_a_worker_s_cases_are_told_by_their_input_partition_not_the_output_one() -> None:
    # the case-state topic keeps librdkafka's default partitioner: a worker writes to
    # every partition of it; its cases are those whose input partition it owns
    seen = [Seen(0, 11.0, 11.2, home=4), Seen(4, 12.0, 12.1, home=1),
            Seen(2, 26.0, 26.4, home=4)]
    assert resumed(seen, [4], 10.0, home=True) == {4: 11.2}
    assert resumed(seen, [4], 20.0, home=True) == {4: 26.4}
    assert resumed(seen, [4], 10.0) == {4: 12.1}


def _run(rnd: int, workers: int, standby: int, eps: float | None = None,
         **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"round": rnd, "key": f"w{workers}-s{standby}", "workers": workers,
                           "standby": standby, "load_average": [4.0 + rnd, 9.0 + rnd]}
    if eps is not None:
        out["eps"] = eps
        out["cpu"] = {"worker_cores": 0.5 * workers, "broker_cores": 0.4,
                      "worker_us_per_event": 300.0, "broker_us_per_event": 200.0,
                      "machine_busy": 0.9}
    return {**out, **extra}


def _failover(all_s: float) -> dict[str, Any]:
    return {"all_s": all_s, "first_s": all_s - 1, "member_gone_s": 15.5,
            "after_gone_s": all_s - 15.5}


def _broker(gap: float) -> dict[str, Any]:
    return {"arrival_gap_s": gap, "write_gap_s": gap - 2, "resumed_all_s": gap + 1,
            "normal_gap_s": 0.3, "led": 2}


def _runs() -> list[dict[str, Any]]:
    return [_run(0, 1, 0, 1000.0, broker=_broker(11.0)),
            _run(0, 2, 1, 1300.0, failover=_failover(19.0)),
            _run(0, 2, 0, 1400.0, failover=_failover(24.0)),
            _run(1, 1, 0, 500.0, broker=_broker(13.0)),  # a busy round: ratios per round
            _run(1, 2, 1, 700.0, failover=_failover(18.0)),
            _run(1, 2, 0, 650.0, failover=_failover(30.0)),
            _run(2, 1, 0, 900.0, broker=_broker(10.0)),
            _run(2, 2, 1, 1000.0, failover=_failover(21.0),
                 restarts_while_joining=["w1: ValueError('Offset must be a positive integer')"]),
            _run(2, 2, 0, 1100.0, failover=_failover(27.0))]


def test_medians_over_rounds_and_the_ratio_within_each_round() -> None:
    m = summarise(_runs())
    one, two, bare = (m["throughput"][k] for k in ("w1-s0", "w2-s1", "w2-s0"))
    assert one["eps"]["median"] == 900.0 and one["eps"]["range"] == [500.0, 1000.0]
    assert two["eps"]["median"] == 1000.0
    # 1.3, 1.4, 1.11: within each round, then the median
    assert two["ratio_to_fewest"] == pytest.approx(1300 / 1000)
    assert bare["ratio_to_fewest"] == pytest.approx(1.3)  # 1.4, 1.3, 1.22
    assert one["ratio_to_fewest"] == 1.0
    assert two["worker_cores"] == 1.0 and two["machine_busy"] == 0.9
    assert m["failover"]["w2-s1"]["all_s"]["median"] == 19.0
    assert m["failover"]["w2-s0"]["all_s"]["range"] == [24.0, 30.0]
    assert "w1-s0" not in m["failover"]
    b = m["broker_pause"]
    assert b["arrival_gap_s"]["median"] == 11.0 and b["write_gap_s"]["median"] == 9.0
    assert b["workers"] == 1 and b["led"] == [2, 2, 2]
    assert m["load_average"] == [4.0, 11.0]
    assert m["join_restarts"] == [
        "round 3, w2-s1, w1: ValueError('Offset must be a positive integer')"]


def test_the_report_names_what_the_cores_cap_and_every_measure() -> None:
    summary = {"machine": {"cpus": 2}, "brokers": 3, "replication": 3, "min_insync": 2,
               "security": "SASL_PLAINTEXT", "partitions": 6, "hold_cases": 20_000,
               "rounds": 3, "events_per_run": 20_000, "steady_rate_eps": 200.0,
               "measured": summarise(_runs()), "path": "r.json"}
    text = render(summary)
    assert "3-broker cluster (replication 3, min.insync.replicas 2" in text
    assert "load average (1 min) 4.0-11.0" in text
    assert "1 worker, no standby" in text and "2 workers, 1 standby replica" in text
    assert "these machines have 2 cores" in text
    assert "capped by the cores, not by the partitions" in text
    # 2 cores / (300 + 200 µs an event)
    assert "would drain at most 4,000 events/s" in text
    assert "failover after SIGKILL of one of 2 workers, 1 standby replica" in text
    assert "back after 19.0 s (18.0-21.0; the first 18.0 s)" in text
    assert "dropped it after 15.5 s (the 15 s session timeout), its output back 3.5 s " \
        "after that (2.5-5.5)" in text
    assert "failover after SIGKILL of one of 2 workers, no standby" in text
    assert "longest gap in case-state output 11.0 s reaching a reader" in text
    assert "exited while their group formed, started again as `up` would (1): round 3, " \
        "w2-s1, w1: ValueError('Offset must be a positive integer')" in text
    assert text.endswith("results: r.json")


def _bench_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["bench", *argv])


def test_options_that_do_not_go_with_the_cluster_run_are_refused_before_it_starts() -> None:
    refuse_other_options(_bench_args("--brokers", "3", "--workers", "1,2"))
    refuse_other_options(_bench_args())
    with pytest.raises(ConfigError, match="add --brokers 3"):
        refuse_other_options(_bench_args("--workers", "2"))
    for extra in (["--scale", "10"], ["--bootstrap", "127.0.0.1:9092"],
                  ["--plaintext-baseline"], ["--profile", "x"]):
        with pytest.raises(ConfigError, match=f"{extra[0]} does not go with --brokers 3"):
            refuse_other_options(_bench_args("--brokers", "3", *extra))
