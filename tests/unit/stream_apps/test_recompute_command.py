"""`onewindow recompute-deadlines` without a broker: a bad override file is status 2 and
nothing is sent; an unreachable broker is status 1; each in one line."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import stream_apps.commands
from onewindow.config import Settings
from onewindow_cli.cli import main


def _settings(monkeypatch: pytest.MonkeyPatch, bootstrap: str, **kw: object) -> None:
    settings = Settings(kafka_security_protocol="PLAINTEXT", kafka_bootstrap=bootstrap, **kw)
    monkeypatch.setattr(stream_apps.commands, "settings_from", lambda _args: settings)


def test_a_bad_override_file_is_status_2_before_anything_is_sent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_broker: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "calendar.yaml"
    bad.write_text("years:\n  2028:\n    workdays: [2026-12-27]\n", encoding="utf-8")
    _settings(monkeypatch, no_broker, calendar_override_file=bad)
    assert main(["recompute-deadlines"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("onewindow recompute-deadlines: "), err
    assert str(bad) in err[0] and "2026-12-27" in err[0]


def test_no_broker_is_status_1_in_one_line(monkeypatch: pytest.MonkeyPatch, no_broker: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    _settings(monkeypatch, no_broker)
    started = time.monotonic()
    assert main(["recompute-deadlines", "--timeout", "1"]) == 1
    assert time.monotonic() - started < 30
    captured = capsys.readouterr()
    err = [line for line in captured.err.splitlines() if line.strip()]
    assert len(err) == 1 and "calendar checks not delivered" in err[0], err
    assert "%" not in captured.err and not captured.out  # no librdkafka line
