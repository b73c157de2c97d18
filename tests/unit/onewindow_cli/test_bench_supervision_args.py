"""`onewindow bench-supervision` refuses what would waste its hour, before anything
starts: an unknown department (it would measure zeros), a --no-load model that is not
there, an --out it cannot write (the results were written at the end only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from onewindow_cli.cli import main


def _refused(argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(["bench-supervision", *argv])
    assert exit_.value.code not in (0, None)
    return str(exit_.value.code)


def test_an_unknown_department_is_refused(tmp_path: Path) -> None:
    msg = _refused(["--department", "nope", "--database-url", f"sqlite:///{tmp_path}/m.db"])
    assert msg.startswith("--department 'nope' is not a known department (") and "scjgj" in msg
    assert not (tmp_path / "m.db").exists()  # nothing loaded


def test_no_load_needs_a_model_with_cases(tmp_path: Path) -> None:
    msg = _refused(["--no-load", "--database-url", f"sqlite:///{tmp_path}/empty.db"])
    assert msg == "--no-load: no read model to measure there (no such table: cases)"


def test_an_out_directory_it_cannot_write_is_refused_by_the_parser(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as exit_:
        main(["bench-supervision", "--out", str(blocker / "results")])
    assert exit_.value.code == 2
    assert "argument --out: cannot make or write" in capsys.readouterr().err
