"""`onewindow reprocess` without a broker: each refusal is one line and its exit status
(2: what the operator can fix, 1: the broker), before anything is read or written."""

from __future__ import annotations

from pathlib import Path

import pytest

import stream_apps.commands
from onewindow.config import Settings
from onewindow_cli.cli import main
from tests.settings_support import main_with_environment


def _settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bootstrap: str,
              **kw: object) -> None:
    settings = Settings(kafka_security_protocol="PLAINTEXT", data_dir=tmp_path,
                        kafka_bootstrap=bootstrap, **kw)
    monkeypatch.setattr(stream_apps.commands, "settings_from", lambda _args: settings)


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    err = [line for line in captured.err.splitlines() if line.strip()
           and "waiting up to" not in line]
    assert len(err) == 1 and err[0].startswith("onewindow reprocess: "), err
    assert "%" not in captured.err  # no librdkafka line
    return err[0]


def test_no_broker_is_status_1_in_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                           no_broker: str, capsys: pytest.CaptureFixture[str]) -> None:
    _settings(monkeypatch, tmp_path, no_broker, id_hash_key="unit-test-id-hash-key-0123456789abcdef")
    assert main(["reprocess", "--wait", "1"]) == 1
    assert "127.0.0.1" in _one_line(capsys)
    assert not (tmp_path / "reprocess").exists()  # nothing was started


def test_no_id_hash_key_is_status_2_before_the_broker_is_asked(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_broker: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("ONEWINDOW_ID_HASH_KEY", raising=False)
    monkeypatch.delenv("ONEWINDOW_ID_HASH_KEY_FILE", raising=False)
    _settings(monkeypatch, tmp_path, no_broker, insecure_dev_key=False, id_hash_key=None,
              id_hash_key_file=None)
    assert main(["reprocess", "--wait", "60"]) == 2
    assert "ID" in _one_line(capsys)


@pytest.mark.parametrize("option", ["--jobs", "--batch-size"])
def test_counts_are_whole_numbers_above_0(option: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["reprocess", option, "0"])
    assert exit_.value.code == 2
    assert "greater than 0" in capsys.readouterr().err


def _status(argv: list[str]) -> int:
    """`main`'s exit status, argparse's refusals (SystemExit) included."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)


@pytest.mark.parametrize(("option", "value", "says"), [
    ("--state-dir", "/proc/x", "/proc/x"),  # the kernel refuses it, even to root
    ("--state-dir", "{file}/x", "Not a directory"),
    ("--report", "/etc", "is a directory"),
    ("--report", "{tmp}/no/such/report.json", "does not exist"),
    ("--to-prefix", "bad prefix!", "not a valid topic prefix"),
    ("--to-prefix", "x" * 240, "over Kafka's 249"),
])
def test_a_bad_option_is_refused_before_the_broker_is_asked(
        option: str, value: str, says: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        no_broker: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A newcomer's `--state-dir /proc/x` and `--report /etc` ended in a traceback, the
    report's only after the whole run, and `--to-prefix 'bad prefix!'` suggested an
    equally bad `provision`: each is one line and exit 2 while the broker is not even
    asked (--wait 60 on a port where none answers: waiting would end in status 1)."""
    _settings(monkeypatch, tmp_path, no_broker, id_hash_key="unit-test-id-hash-key-0123456789abcdef")
    (tmp_path / "file").write_text("")
    value = value.format(file=tmp_path / "file", tmp=tmp_path)
    assert _status(["reprocess", "--wait", "60", option, value]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err[-1].startswith(f"onewindow reprocess: error: argument {option}: "), err
    assert says in err[-1] and "provision" not in err[-1]
    assert not (tmp_path / "reprocess").exists()


@pytest.mark.parametrize(("setting", "says"), [
    ({"data_dir": Path("/proc/x")}, "scratch state directory"),
])
def test_the_settings_behind_the_options_are_checked_before_the_broker_too(
        setting: dict[str, object], says: str, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path, no_broker: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The source prefix from the environment, the default scratch directory under the
    data directory."""
    settings = Settings(kafka_security_protocol="PLAINTEXT", kafka_bootstrap=no_broker,
                        id_hash_key="unit-test-id-hash-key-0123456789abcdef",
                        **{"data_dir": tmp_path, **setting})
    monkeypatch.setattr(stream_apps.commands, "settings_from", lambda _args: settings)
    assert main(["reprocess", "--wait", "60"]) == 2
    assert says in _one_line(capsys)


def test_a_bad_source_prefix_from_the_environment_is_status_2_before_the_broker(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_broker: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The settings refuse it as they are read (`Settings`), naming the variable."""
    assert main_with_environment(
        monkeypatch, ["reprocess", "--wait", "60"], TOPIC_PREFIX="a b",
        KAFKA_BOOTSTRAP=no_broker, KAFKA_SECURITY_PROTOCOL="PLAINTEXT",
        DATA_DIR=str(tmp_path)) == 2
    assert "ONEWINDOW_TOPIC_PREFIX: a Kafka topic name holds only" in _one_line(capsys)
    assert not (tmp_path / "reprocess").exists()


def test_good_paths_pass_and_the_checks_leave_nothing_behind(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_broker: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A state directory to be made and a report to be written pass (the run goes on to
    the broker, which is not there: 1); the directories and file made to check them are
    gone again, an existing report is not truncated by the check."""
    _settings(monkeypatch, tmp_path, no_broker, id_hash_key="unit-test-id-hash-key-0123456789abcdef")
    old = tmp_path / "old-report.json"
    old.write_text("{}\n")
    assert main(["reprocess", "--wait", "1", "--state-dir", str(tmp_path / "s" / "t"),
                 "--report", str(tmp_path / "report.json"), "--to-prefix", "next.gen-2_"]) == 1
    assert main(["reprocess", "--wait", "1", "--report", str(old)]) == 1
    capsys.readouterr()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old-report.json"]
    assert old.read_text() == "{}\n"
