"""`--loglevel` takes Python's level names only: a newcomer's `worker --loglevel NOPE`
started a worker logging at INFO, unsaid. Every command with the option refuses an
unknown level with argparse's one-line usage error and exit status 2, before anything
starts."""

from __future__ import annotations

import argparse

import pytest

from onewindow.cli_options import LOG_LEVELS
from onewindow_cli.cli import build_parser, main

#: what each command with `--loglevel` needs besides it to parse
REQUIRED = {"copy-inputs": ["--to-prefix", "g2."]}


def _commands_with_loglevel() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    return sorted(name for name, p in sub.choices.items()
                  if any("--loglevel" in a.option_strings for a in p._actions))  # noqa: SLF001


def test_the_workers_and_the_sink_have_the_option() -> None:
    assert {"worker", "materials-worker", "sink"} <= set(_commands_with_loglevel())


@pytest.mark.parametrize("command", _commands_with_loglevel())
def test_an_unknown_level_is_a_usage_error(command: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, *REQUIRED.get(command, []), "--loglevel", "NOPE"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (f"onewindow {command}: error: argument --loglevel: 'NOPE' is not a "
                       f"log level: one of {', '.join(LOG_LEVELS)} (any case)"), err


@pytest.mark.parametrize("command", _commands_with_loglevel())
def test_a_known_level_in_any_case_is_taken_in_capitals(command: str) -> None:
    for given, level in (("debug", "DEBUG"), ("Warning", "WARNING"), ("ERROR", "ERROR")):
        args = build_parser().parse_args([command, *REQUIRED.get(command, []),
                                          "--loglevel", given])
        assert args.loglevel == level
    assert build_parser().parse_args([command, *REQUIRED.get(command, [])]).loglevel is None
