"""Settings (onewindow/config.py): the one config loader."""

from __future__ import annotations

import pytest

from onewindow.config import Settings


def test_the_default_bootstrap_follows_the_local_broker_port(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("ONEWINDOW_KAFKA_BOOTSTRAP", "ONEWINDOW_KAFKA_PORT"):
        monkeypatch.delenv(var, raising=False)
    assert Settings().kafka_bootstrap == "127.0.0.1:19092"
    monkeypatch.setenv("ONEWINDOW_KAFKA_PORT", "29092")  # as `onewindow up` would use it
    assert Settings().kafka_bootstrap == "127.0.0.1:29092"
    monkeypatch.setenv("ONEWINDOW_KAFKA_BOOTSTRAP", "kafka:9092")  # named: it wins
    assert Settings().kafka_bootstrap == "kafka:9092"
    assert Settings(kafka_bootstrap="b:1").kafka_bootstrap == "b:1"
