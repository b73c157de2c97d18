"""`onewindow users` on bad input: one line and exit 2, never a traceback or a silent
success (a newcomer's user store under /proc/x was a traceback, `users set-window clerk1
''` said "window of clerk1: " and exited 0)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from onewindow_cli.cli import main
from tests.unit.counter.helpers import PASSWORD


@pytest.fixture(autouse=True)
def _umask_restored() -> Iterator[None]:
    """`users` sets the process's umask to 077 (its SQLite file is the operator's alone):
    the pytest process gets its own back."""
    old = os.umask(0o077)
    os.umask(old)
    yield
    os.umask(old)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, list[str]]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, [line for line in captured.err.splitlines() if line.strip()]


@pytest.mark.parametrize(("url", "says"), [
    ("sqlite:////proc/x/users.db", "cannot make its directory /proc/x"),
    ("sqlite:///{file}/users.db", "a file, not a directory"),
    ("sqlite:////proc/x", "cannot open the user store"),
])
def test_an_unusable_store_is_one_line(url: str, says: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("")
    status, _out, err = _run(["users", "list", "--database-url",
                              url.format(file=tmp_path / "file")], capsys)
    assert status == 2 and len(err) == 1 and err[0].startswith("onewindow users: "), err
    assert says in err[0]


def test_an_empty_window_is_refused_and_none_clears_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    db = ["--database-url", f"sqlite:///{tmp_path / 'staff.db'}"]
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert _run(["users", "add", "clerk1", "--role", "clerk", "--password-stdin",
                 "--window", "W07", *db], capsys)[0] == 0

    for argv in (["users", "set-window", "clerk1", ""], ["users", "set-window", "clerk1", "W07\n"],
                 ["users", "add", "clerk2", "--role", "clerk", "--window", ""]):
        status, out, err = _run([*argv, *db], capsys)
        assert status == 2 and len(err) == 1 and "window id" in err[0], (argv, err)
        assert out == ""
    _status, listed, _err = _run(["users", "list", *db], capsys)
    assert "window W07" in listed and "clerk2" not in listed  # nothing changed

    assert _run(["users", "set-window", "clerk1", "--none", *db], capsys)[:2] == (
        0, "window of clerk1: none (from their next sign-in)\n")
    assert "window" not in _run(["users", "list", *db], capsys)[1]
