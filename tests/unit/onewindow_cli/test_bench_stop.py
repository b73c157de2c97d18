"""SIGTERM and SIGINT unwind a bench (`onewindow.stopping.raise_on_signals`): its
`finally` blocks run, so the brokers and workers it started are stopped, and it ends with
one line and 128 + the signal's number. A newcomer's SIGTERM to `onewindow bench
--brokers 3` once left three Kafka JVMs running. The real bench and its broker:
tests/integration/test_bench_stop.py."""

from __future__ import annotations

import argparse
import signal
import time
from typing import Any

import pytest

from onewindow.stopping import Stopped, raise_on_signals
from onewindow_cli import bench
from onewindow_cli.cli import build_parser, main


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    return dict(sub.choices)


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_the_first_signal_raises_a_second_during_the_clean_up_is_ignored(
        sig: signal.Signals, status: int) -> None:
    before = signal.getsignal(sig)
    cleaned = []
    with pytest.raises(Stopped) as stopped, raise_on_signals():
        try:
            signal.raise_signal(sig)
            time.sleep(30)  # not reached: the handler raised
        finally:
            signal.raise_signal(sig)  # ignored: the clean-up goes on
            cleaned.append(True)
    assert cleaned == [True]
    assert (stopped.value.signum, stopped.value.name, stopped.value.exit_status) == \
        (sig, sig.name, status)
    assert isinstance(stopped.value, KeyboardInterrupt)
    assert signal.getsignal(sig) == before


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_bench_stopped_runs_its_clean_up_and_ends_in_one_line(
        sig: signal.Signals, status: int, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    cleaned = []

    def run(*_args: Any, **_kwargs: Any) -> dict[str, Any]:  # the bench, its broker running
        try:
            signal.raise_signal(sig)
            time.sleep(30)
        finally:
            cleaned.append("broker stopped")
        return {}

    monkeypatch.setattr(bench.bench_gateway, "run", run)
    before = signal.getsignal(signal.SIGTERM)
    assert main(["bench-gateway"]) == status
    assert cleaned == ["broker stopped"]
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"onewindow bench-gateway: stopped by {sig.name} before the end; the "
                   "processes it started are stopped, nothing was reported"]
    assert signal.getsignal(signal.SIGTERM) == before


def test_every_bench_unwinds_and_no_other_command_does() -> None:
    """A bench added later is in `bench.BENCHES` or this fails; the long-running services
    keep their own stop (`stop_on_signals`: exit 0 after a clean stop)."""
    unwinding = {name for name, p in _subcommands().items() if p.get_default("unwind_on_stop")}
    assert unwinding == set(bench.BENCHES)
    assert unwinding == {name for name in _subcommands() if name.startswith("bench")}
