"""`onewindow reprocess` without a broker: each refusal is one line and its exit status
(2: what the operator can fix, 1: the broker), before anything is read or written."""

from __future__ import annotations

from pathlib import Path

import pytest

import stream_apps.commands
from onewindow.config import Settings
from onewindow_cli.cli import main


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
