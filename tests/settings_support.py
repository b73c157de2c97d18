"""A command run with ONEWINDOW_* settings from the environment, as a process reads them
(`onewindow.config.get_settings`, read once per process: the cache is cleared around the
run, so neither another test's settings nor these leak across)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from onewindow.config import get_settings
from onewindow_cli.cli import main


def main_with_environment(monkeypatch: pytest.MonkeyPatch, argv: Sequence[str],
                          **settings: str) -> int:
    """`main(argv)`'s status with ``settings`` as ONEWINDOW_* variables
    (``TOPIC_PREFIX="a b"``)."""
    for name, value in settings.items():
        monkeypatch.setenv(f"ONEWINDOW_{name}", value)
    get_settings.cache_clear()
    try:
        return main(list(argv))
    finally:
        get_settings.cache_clear()
