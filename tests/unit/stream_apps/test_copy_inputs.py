"""`onewindow copy-inputs` without a broker: the placement rule of a copied record
(`onewindow.topics.copied_partition`), each refusal in one line with its exit status
(2: what the operator can fix, 1: the broker) before anything is read or written, the
refusal for records others wrote naming all of them at once, and ``--skip-to-end``'s
refusal of a topic that is not one of the source's input topics."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import stream_apps.commands
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.errors import OneWindowError
from onewindow.topics import copied_partition, partition_for
from onewindow_cli.cli import main
from stream_apps.copy_inputs import (
    CopyPlan,
    ForeignRecords,
    Skipped,
    TopicCopier,
    foreign_refusal,
    refuse_foreign,
    skip_topics_problem,
    skipped_line,
)
from tests.settings_support import main_with_environment


@given(key=st.binary(max_size=40), n=st.integers(1, 12), extra=st.integers(0, 40),
       p=st.integers(0, 11))
def test_a_record_is_on_its_keys_partition_in_the_copy_iff_it_was_in_the_source(
        key: bytes, n: int, extra: int, p: int) -> None:
    p %= n
    m = n + extra
    q = copied_partition(key, p, n, m)
    assert 0 <= q < m
    assert (q == partition_for(key, m)) == (p == partition_for(key, n))


def test_the_cases_by_name() -> None:
    key = b"GZ2025030300001"
    home2, home5 = partition_for(key, 2), partition_for(key, 5)
    assert copied_partition(key, home2, 2, 5) == home5
    assert copied_partition(key, 1 - home2, 2, 5) == (home5 + 1) % 5  # WRONG_PARTITION
    assert copied_partition(None, 1, 2, 5) == 1  # no key: dead-lettered anywhere
    assert copied_partition(key, home2, 2, 2) == home2  # the same count: where it was
    with pytest.raises(ValueError, match="keeps or grows"):
        copied_partition(key, 0, 5, 2)


def _settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bootstrap: str,
              prefix: str = "g1.") -> None:
    settings = Settings(kafka_security_protocol="PLAINTEXT", data_dir=tmp_path,
                        kafka_bootstrap=bootstrap, topic_prefix=prefix)
    monkeypatch.setattr(stream_apps.commands, "settings_from", lambda _args: settings)


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    err = [line for line in captured.err.splitlines() if line.strip()
           and "waiting up to" not in line]
    assert len(err) == 1 and err[0].startswith("onewindow copy-inputs: "), err
    assert "%" not in captured.err  # no librdkafka line
    return err[0]


def test_no_broker_is_status_1_in_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                           no_broker: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    _settings(monkeypatch, tmp_path, no_broker)
    assert main(["copy-inputs", "--to-prefix", "g2.", "--wait", "1"]) == 1
    assert "127.0.0.1" in _one_line(capsys)


@pytest.mark.parametrize(("source", "target", "says"), [
    ("g1.", "g1.", "is the source generation itself"),
])
def test_prefixes_are_status_2_before_the_broker_is_asked(
        source: str, target: str, says: str, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path, no_broker: str, capsys: pytest.CaptureFixture[str]) -> None:
    _settings(monkeypatch, tmp_path, no_broker, prefix=source)
    assert main(["copy-inputs", "--to-prefix", target, "--wait", "60"]) == 2
    assert says in _one_line(capsys)


def test_a_bad_source_prefix_from_the_environment_is_status_2_before_the_broker(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_broker: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The settings refuse it as they are read (`Settings`), naming the variable."""
    assert main_with_environment(
        monkeypatch, ["copy-inputs", "--to-prefix", "g2.", "--wait", "60"], TOPIC_PREFIX="g 1",
        KAFKA_BOOTSTRAP=no_broker, KAFKA_SECURITY_PROTOCOL="PLAINTEXT",
        DATA_DIR=str(tmp_path)) == 2
    assert "ONEWINDOW_TOPIC_PREFIX: a Kafka topic name holds only" in _one_line(capsys)


@pytest.mark.parametrize("argv", [["copy-inputs"],
                                  ["copy-inputs", "--to-prefix", "g2/"],
                                  ["copy-inputs", "--to-prefix", "g2.", "--batch-size", "0"]])
def test_usage_errors_are_status_2(argv: list[str],
                                   capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip()


def _copier(plan: CopyPlan, source: str, target: str, foreign: dict[int, int],
            pending: dict[int, int], next_: dict[int, int]) -> TopicCopier:
    """A copier as `TopicCopier.resume(refuse=False)` leaves it (its clients unused:
    `refuse_foreign` reads only what resume noted)."""
    copier = TopicCopier(Settings(), plan, source, target, consumer=None,  # type: ignore[arg-type]
                         producer=None)  # type: ignore[arg-type]
    copier.foreign_ahead, copier.pending, copier.next = foreign, pending, next_
    return copier


def test_the_refusal_names_every_blocked_partition_of_every_topic_in_one_line() -> None:
    """A newcomer fixed the foreign records one run at a time: the copy named only the
    first partition of the first topic. Now one line names them all (and only them)."""
    pairs = tuple((f"g1.dept.{c}.events", f"g2.dept.{c}.events") for c in ("a", "b", "c"))
    plan = CopyPlan("g1.", "g2.", 2, 3, pairs, {})
    copiers = [
        _copier(plan, *pairs[0], {0: 3, 2: 1}, {0: 15, 1: 9}, {0: 5, 1: 9}),  # 10 left
        _copier(plan, *pairs[1], {}, {1: 4}, {1: 0}),  # nothing foreign: not named
        _copier(plan, *pairs[2], {1: 5}, {1: 7}, {1: 3}),  # 4 left
    ]
    with pytest.raises(OneWindowError) as refused:
        refuse_foreign(copiers)
    line = str(refused.value)
    assert "\n" not in line
    assert line.startswith("9 record(s) the copy did not write are in the target"), line
    assert ("g2.dept.a.events[0]: 3, g2.dept.a.events[2]: 1 (g1.dept.a.events has 10 more "
            "to copy); g2.dept.c.events[1]: 5 (g1.dept.c.events has 4 more to copy)") in line
    assert "dept.b" not in line and "'g2.'" in line
    assert ("skip them here (--skip-to-end g1.dept.a.events --skip-to-end "
            "g1.dept.c.events; docs/operations.md") in line
    refuse_foreign([copiers[1]])  # none blocked: no refusal
    assert foreign_refusal("g2.", [ForeignRecords("s", "t", {0: 0, 1: 2}, 1)]).startswith(
        "2 record(s) the copy did not write are in the target ahead of records still to "
        "copy, which cannot come after them: t[1]: 2 (s has 1 more to copy).")


def test_skip_to_end_refuses_a_topic_not_of_the_source_in_one_line_before_the_broker(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_broker: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`--skip-to-end` moves the copy's progress only on the source generation's input
    topics: a target's input topic (a newcomer's likely slip), a derived topic, an
    unknown department's are refused with exit status 2 in one line naming each, before
    the broker is asked (``--wait 60`` against nothing: asking it would end in 1)."""
    code = sorted(load_registry().codes)[0]
    _settings(monkeypatch, tmp_path, no_broker)
    assert main(["copy-inputs", "--to-prefix", "g2.", "--wait", "60",
                 "--skip-to-end", f"g1.dept.{code}.events",
                 "--skip-to-end", f"g2.dept.{code}.events",
                 "--skip-to-end", "g1.onewindow.case-state",
                 "--skip-to-end", "g1.dept.nosuch.events"]) == 2
    line = _one_line(capsys)
    assert f"--skip-to-end g2.dept.{code}.events (an input topic of the target generation " \
           f"'g2.': name g1.dept.{code}.events), g1.onewindow.case-state, " \
           "g1.dept.nosuch.events: not an input topic of the source generation 'g1.'" in line
    assert "g1.dept.<code>.events" in line and code in line


def test_skip_topics_problem_names_only_the_wrong_ones_once() -> None:
    codes = ["a", "b"]
    assert skip_topics_problem(["g1.dept.a.events", "g1.dept.b.events"], "g1.", "g2.",
                               codes) is None
    assert skip_topics_problem(["dept.a.events"], "", "g2.", codes) is None
    line = skip_topics_problem(["x", "g1.dept.a.events", "x", "dept.b.events"], "g1.", "",
                               codes)
    assert line is not None and "\n" not in line
    assert line.startswith("--skip-to-end x, dept.b.events (an input topic of the target "
                           "generation '': name g1.dept.b.events): not an input topic of "
                           "the source generation 'g1.'"), line
    assert line.endswith("(a, b)")


def test_the_skipped_line_gives_the_records_of_each_partition() -> None:
    line = skipped_line(Skipped("g1.dept.a.events", "g2.dept.a.events", {1: 2, 0: 1_000},
                                {0: 5_000, 1: 7}))
    assert line == ("skipped 1,002 record(s) of g1.dept.a.events (per partition 0: 1,000, "
                    "1: 2), never to be copied into g2.dept.a.events: the next copy goes "
                    "on from its end")
