"""Settings (onewindow/config.py): the one config loader."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from onewindow.config import Settings, secret_value
from onewindow.errors import ConfigError


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


def test_a_secret_setting_comes_from_its_value_or_its_file(tmp_path) -> None:
    """onewindow.config.secret_value: what the Kafka password and the OpenID Connect
    client secret are read with."""
    f = tmp_path / "secret"
    f.write_text("  s3cret\n", "utf-8")
    assert secret_value(SecretStr("direct"), f, "X_FILE") == "direct"
    assert secret_value(None, f, "X_FILE") == "s3cret"
    assert secret_value(None, None, "X_FILE") is None
    with pytest.raises(ConfigError, match=r"^X_FILE .*missing: No such file"):
        secret_value(None, tmp_path / "missing", "X_FILE")
    f.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        secret_value(None, f, "X_FILE")


def test_a_refused_setting_is_one_line_naming_the_variable(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad ONEWINDOW_* value: exit 2 and one line naming it, no pydantic traceback (the
    newcomer's check found a traceback and exit 1)."""
    from onewindow.config import get_settings  # noqa: PLC0415
    from onewindow_cli.cli import main  # noqa: PLC0415 - the entry point under test

    monkeypatch.setenv("ONEWINDOW_KAFKA_SECURITY_PROTOCOL", "FOO")
    monkeypatch.setenv("ONEWINDOW_COUNTER_PORT", "abc")
    get_settings.cache_clear()  # read once per process: another test may have read it
    try:
        assert main(["produce", "/dev/null"]) == 2
    finally:
        get_settings.cache_clear()  # not the refused settings for the tests after
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "ONEWINDOW_KAFKA_SECURITY_PROTOCOL" in err and "ONEWINDOW_COUNTER_PORT" in err


def test_the_log_level_is_one_python_knows_in_any_case() -> None:
    """ONEWINDOW_LOG_LEVEL=NOPE was read as INFO without a word."""
    assert Settings(log_level="debug").log_level == "DEBUG"
    assert Settings(log_level=" Warning ").log_level == "WARNING"
    with pytest.raises(ValueError, match="one of DEBUG, INFO, WARNING, ERROR, CRITICAL"):
        Settings(log_level="NOPE")


def test_the_topic_prefix_from_the_environment_is_one_kafka_can_name_topics_with(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """ONEWINDOW_TOPIC_PREFIX='n c/' reached the broker's error on the first topic (the
    command line's --topic-prefix was checked, the environment not)."""
    assert Settings(topic_prefix="t-1.").topic_prefix == "t-1."
    monkeypatch.setenv("ONEWINDOW_TOPIC_PREFIX", "n c/")
    with pytest.raises(ValueError, match="topic name holds only letters.*not ' '"):
        Settings()
    with pytest.raises(ValueError, match="over Kafka's 249"):
        Settings(topic_prefix="p" * 240)
