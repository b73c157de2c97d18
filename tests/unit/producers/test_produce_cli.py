"""`onewindow produce` exit statuses (issue 13): bad input is 2 with a line naming
file:line and the reason, a failed delivery is 1 with one line. Nothing here reaches a
broker: every case fails before anything is sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import producers.commands
from onewindow_cli.cli import main
from producers.publisher import DeliveryFailed
from tests.examples import RESTAURANT_EVENTS


def _lines(text: str) -> list[str]:
    return [x for x in text.splitlines() if x.strip()]


def test_a_file_that_is_not_utf8_names_its_line(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    good = RESTAURANT_EVENTS.read_bytes().splitlines(keepends=True)
    path = tmp_path / "gbk.jsonl"
    path.write_bytes(b"".join(good[:2]) + "陈静".encode("gbk") + b"\n" + b"".join(good[2:]))
    assert main(["produce", str(path)]) == 2
    err = _lines(capsys.readouterr().err)
    assert len(err) == 1, err
    assert err[0].startswith(f"onewindow produce: {path}:3: not UTF-8 text")


@pytest.mark.parametrize(("content", "reason"), [
    ("{not json\n", "UNDECODABLE"),
    (json.dumps({"type": "CaseWithdrawn", "event_id": "e1", "case_id": "C1",
                 "department": "nope", "occurred_at": "2026-03-02T09:00:00+08:00",
                 "reason": "x"}) + "\n", "UNKNOWN_DEPARTMENT"),
])
def test_a_bad_line_is_status_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                content: str, reason: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content, "utf-8")
    assert main(["produce", str(path)]) == 2
    err = _lines(capsys.readouterr().err)
    assert err[0].startswith(f"{path}:1: {reason}: "), err
    assert "nothing was sent" in err[-1]


def test_an_unreadable_file_or_unknown_department_is_status_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["produce", str(tmp_path / "missing.jsonl")]) == 2
    assert _lines(capsys.readouterr().err) == [
        f"onewindow produce: cannot read {tmp_path / 'missing.jsonl'}: No such file or directory"]
    assert main(["produce", str(RESTAURANT_EVENTS), "--as", "nope"]) == 2
    assert _lines(capsys.readouterr().err) == [
        "onewindow produce: --as nope: not a registered department"]


def test_a_failed_delivery_is_status_1(monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    def fail(*_: Any, **__: Any) -> int:
        raise DeliveryFailed("9 of 9 events not delivered within 5s: no acknowledgement")

    monkeypatch.setattr(producers.commands, "produce_file", fail)
    assert main(["produce", str(RESTAURANT_EVENTS)]) == 1
    assert _lines(capsys.readouterr().err) == [
        "onewindow produce: 9 of 9 events not delivered within 5s: no acknowledgement"]


def test_timeout_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["produce", str(RESTAURANT_EVENTS), "--timeout", "0"])
    assert caught.value.code == 2
