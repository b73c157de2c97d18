"""Command-line values with an upper bound are refused in one line, exit 2, before
anything starts (a newcomer's `up --workers 99999999999` once built a list of 2x10^11
commands until the kernel killed it, leaving its broker behind)."""

from __future__ import annotations

import argparse

import pytest

from onewindow.cli_options import MAX_BACKLOG_HOURS, MAX_COMPRESSION, MAX_LOCAL_WORKERS
from onewindow_cli.cli import main


@pytest.mark.parametrize("argv", [
    ["up", "--workers", str(MAX_LOCAL_WORKERS + 1)],
    ["up", "--workers", "99999999999"],
    ["up", "--rate", "inf"],
    ["up", "--rate", "0"],
    ["up", "--compression", f"{MAX_COMPRESSION * 10:g}"],
    ["simulate", "--compression", "1e308"],
    ["simulate", "--backlog-hours", f"{MAX_BACKLOG_HOURS + 1:g}"],
    ["simulate", "--events", "-1"],
    ["simulate", "--duration", "nan"],
    ["counter", "--port", "99999"],
    ["counter", "--port", "0"],
    ["gateway", "--port", "-1"],
    ["worker", "--web-port", "65536"],
    ["simulate", "--invalid-rate", "2"],
    ["simulate", "--duplicate-rate", "-1"],
])
def test_a_value_out_of_bounds_is_refused_before_anything_starts(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # no usage of every option before it
    assert err[0].startswith(f"onewindow {argv[0]}: error: argument {argv[1]}: "), err


def test_the_bounds_themselves_are_taken(capsys: pytest.CaptureFixture[str]) -> None:
    """The parser takes the largest allowed values (checked by parsing only: --help
    after them ends the command before anything starts)."""
    for argv in (["up", "--workers", str(MAX_LOCAL_WORKERS), "--compression",
                  f"{MAX_COMPRESSION:g}", "--help"],
                 ["simulate", "--backlog-hours", f"{MAX_BACKLOG_HOURS:g}", "--invalid-rate",
                  "1", "--help"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 0
    capsys.readouterr()


@pytest.mark.parametrize("argv", [["nope"], [], ["worker", "--bogus"], ["bench", "--events"]])
def test_any_refused_command_line_is_one_line(argv: list[str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ": error: " in err[0], err


def test_the_sink_takes_port_0_for_no_metrics_server() -> None:
    """--metrics-port 0 and ONEWINDOW_SINK_METRICS_PORT=0 mean no /metrics (documented);
    the other ports start at 1."""
    from onewindow.cli_options import tcp_port_or_none  # noqa: PLC0415
    from onewindow.config import Settings  # noqa: PLC0415

    assert tcp_port_or_none("0") == 0 and tcp_port_or_none("9102") == 9102
    with pytest.raises(argparse.ArgumentTypeError, match="or 0 for none"):
        tcp_port_or_none("70000")
    assert Settings(sink_metrics_port=0).sink_metrics_port == 0
    with pytest.raises(ValueError, match="counter_port"):
        Settings(counter_port=0)


@pytest.mark.parametrize(("argv", "says"), [
    (["counter", "--bogus"], "onewindow counter: error: unrecognized arguments: --bogus"),
    (["sink", "--loglevel", "INFO", "x"], "onewindow sink: error: unrecognized arguments: x"),
    (["worker", "--port", "1"], "onewindow worker: error: unrecognized arguments: --port 1"),
    (["users", "add", "x", "--role", "clerk", "--bogus"],
     "onewindow users add: error: unrecognized arguments: --bogus"),
    (["gateway-keys", "issue", "gaj", "--bogus"],
     "onewindow gateway-keys issue: error: unrecognized arguments: --bogus"),
])
def test_an_unknown_option_names_the_command_given_it(
        argv: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    """argparse reports unknown arguments from the top parser (``onewindow: error:``):
    which command, down to a nested one, refused them is said."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [says]
