"""`onewindow bench` refuses what it would lose or ignore, in one line and exit 2, before
anything starts (a newcomer's `bench --scale N --json bad/path` lost the whole run at its
end; `--scale-steps` over the cases was a traceback; `--jobs` without `--scale` was
silently ignored), and the option types behind those refusals (onewindow.cli_options)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

import onewindow_cli.bench
from onewindow.cli_options import postgres_url, topic_prefix, writable_dir, writable_file
from onewindow_cli.bench import scale
from onewindow_cli.cli import main


@pytest.fixture(autouse=True)
def _no_run_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Were a refusal missing, the benchmark would start (minutes, a broker): it fails
    the test at once instead."""
    def started(*_a: Any, **_k: Any) -> None:
        raise AssertionError("the benchmark started")

    monkeypatch.setattr(onewindow_cli.bench, "run", started)
    monkeypatch.setattr(scale, "run", started)


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one line `argv` ends with, after checking its exit status is 2."""
    try:
        status = main(argv)
    except SystemExit as exit_:
        status = int(exit_.code or 0)
    assert status == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err and err[-1].startswith("onewindow bench: "), err
    return err[-1]


@pytest.mark.parametrize(("extra", "says"), [
    (["--json", "{tmp}/no/such/dir/out.json"], "argument --json: "),
    (["--json", "{tmp}"], "is a directory"),
    (["--scale-steps", "4"], "--scale-steps 4 is more than --scale 3"),
    (["--postgres-url", "postgresql://u:s3cret@h:notaport/db"], "argument --postgres-url: "),
    (["--postgres-url", "mysql://u:s3cret@h/db"], "is not PostgreSQL"),
])
def test_scale_refuses_a_path_it_could_not_write_and_a_plan_it_could_not_run(
        extra: list[str], says: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    line = _refused(["bench", "--scale", "3", *(a.format(tmp=tmp_path) for a in extra)],
                    capsys)
    assert says in line
    assert "s3cret" not in line  # a database URL's password is never repeated


@pytest.mark.parametrize("extra", [["--jobs", "2"], ["--scale-steps", "3"],
                                   ["--scale-seed", "7"], ["--json", "{tmp}/out.json"],
                                   ["--postgres-url", "postgresql://u@h/db"]])
def test_an_option_of_scale_alone_is_refused_without_it(
        extra: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _refused(["bench", *(a.format(tmp=tmp_path) for a in extra)], capsys)
    assert f"{extra[0]} applies to --scale N" in line
    assert not (tmp_path / "out.json").exists()


def test_a_writable_file_is_checked_without_a_trace(tmp_path: Path) -> None:
    new, old = tmp_path / "new.json", tmp_path / "old.json"
    old.write_text("kept")
    assert writable_file(str(new)) == new and not new.exists()  # the probe is removed
    assert writable_file(str(old)) == old and old.read_text() == "kept"  # not truncated
    for bad in (str(tmp_path), str(old / "x.json"), "/proc/report.json"):
        with pytest.raises(argparse.ArgumentTypeError):
            writable_file(bad)


def test_a_writable_dir_is_made_and_removed_again(tmp_path: Path) -> None:
    assert writable_dir(str(tmp_path / "a" / "b")) == tmp_path / "a" / "b"
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "f").write_text("")
    for bad in ("/proc/x", str(tmp_path / "f"), str(tmp_path / "f" / "x")):
        with pytest.raises(argparse.ArgumentTypeError):
            writable_dir(bad)
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_postgres_urls() -> None:
    for good in ("postgresql://postgres@127.0.0.1:5432/postgres", "postgres://u:p@db/x",
                 "postgresql+psycopg://u@[::1]:5432/x?sslmode=require", "postgresql:///x"):
        assert postgres_url(good) == good
    for bad in ("not a url", "postgresql://u@h:99999/x", "postgresql+psycopg2://u@h/x",
                "sqlite:///x.db", "http://h/x"):
        with pytest.raises(argparse.ArgumentTypeError):
            postgres_url(bad)


def test_topic_prefixes() -> None:
    for good in ("", "t-1.", "gen_2.", "x" * 205):
        assert topic_prefix(good) == good
    for bad in ("bad prefix!", "a/b", "é.", "x" * 206):
        with pytest.raises(argparse.ArgumentTypeError, match="not a valid topic prefix"):
            topic_prefix(bad)


@pytest.mark.parametrize("argv", [["bench", "--rounds", "0"],
                                  ["bench", "--brokers", "3", "--rounds", "0"]])
def test_no_rounds_is_refused_before_a_broker_starts(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    # `bench --brokers 3 --rounds 0` started a cluster, then failed in its report
    line = _refused(argv, capsys)
    assert "argument --rounds: " in line


def test_bench_rebuild_refuses_no_rounds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["bench-rebuild", "--rounds", "-1"])
    assert exit_.value.code == 2
    assert "onewindow bench-rebuild: error: argument --rounds: " in capsys.readouterr().err


def test_all_and_scale_together_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    # it exited 1 with its own prefix, unlike every other refusal of the command
    line = _refused(["bench", "--all", "--scale", "3"], capsys)
    assert line == "onewindow bench: --all and --scale are two runs: give one"
