"""Counts and sizes on the command line are whole numbers above 0: `rebuild --batch-size 0`
dropped the read model and then spun for ever, `--jobs 0` ran silently as one process,
`bench-step --events 0` ended in a ZeroDivisionError (found by a newcomer). And the first
administrator's generated password never ends in punctuation, which a reader copying it
from the end of a sentence left off."""

from __future__ import annotations

import argparse

import pytest

from onewindow.cli_options import positive_int
from onewindow.security import passwords
from onewindow_cli.cli import build_parser


@pytest.mark.parametrize("text", ["0", "-5", "abc", "1.5", ""])
def test_positive_int_refuses_what_is_not_a_count(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        positive_int(text)


def test_positive_int_takes_a_count() -> None:
    assert positive_int("1") == 1 and positive_int("50000") == 50_000


@pytest.mark.parametrize("argv", [
    ["rebuild", "--batch-size", "0"], ["rebuild", "--batch-size", "-5"],
    ["rebuild", "--jobs", "0"], ["rebuild", "--jobs", "-1"],
    ["sink", "--batch-size", "0"],
    ["bench-step", "--events", "0"], ["bench-step", "--rounds", "0"],
])
def test_a_zero_or_negative_count_is_a_usage_error(argv: list[str],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)
    assert exit_.value.code == 2
    assert "greater than 0" in capsys.readouterr().err


def test_rebuild_takes_its_counts() -> None:
    args = build_parser().parse_args(["rebuild", "--batch-size", "300", "--jobs", "2"])
    assert (args.batch_size, args.jobs) == (300, 2)


def test_a_generated_password_ends_with_a_letter() -> None:
    for _ in range(500):
        password = passwords.generate()
        assert password[-1].isalpha()
        passwords.validate(password)
