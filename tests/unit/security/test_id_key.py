"""Which key hashes ID numbers (onewindow/security/id_key.py): the configured key, else
its file, else the development key only when opted in, else one line naming the ways out."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from onewindow.config import Settings
from onewindow.errors import ConfigError, OneWindowError
from onewindow.security.id_key import (
    DEV_KEY,
    MIN_KEY_LENGTH,
    IdHashKeyError,
    ensure_key_file,
    resolve_id_hash_key,
    stack_key_file,
    with_new_key,
)
from onewindow.security.id_protection import IdProtector

KEY = "a-test-key-of-more-than-32-characters-0123"
KEY_ENV = ("ONEWINDOW_ID_HASH_KEY", "ONEWINDOW_ID_HASH_KEY_FILE", "ONEWINDOW_INSECURE_DEV_KEY")


@pytest.fixture(autouse=True)
def _no_key_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in KEY_ENV:
        monkeypatch.delenv(var, raising=False)


def _one_line(exc: pytest.ExceptionInfo[IdHashKeyError]) -> str:
    text = str(exc.value)
    assert "\n" not in text and text
    assert isinstance(exc.value, ConfigError) and isinstance(exc.value, OneWindowError)
    return text


def test_the_configured_key_wins() -> None:
    s = Settings(id_hash_key=SecretStr(KEY), id_hash_key_file=Path("/nonexistent"),
                 insecure_dev_key=True)
    assert resolve_id_hash_key(s) == KEY
    assert IdProtector.from_settings(s).hash("440106198503121237") == \
        IdProtector(KEY).hash("440106198503121237")


def test_the_key_file_is_read_without_its_trailing_newline(tmp_path: Path) -> None:
    for i, ending in enumerate(("", "\n", "\r\n")):
        path = tmp_path / f"key{i}"
        path.write_bytes((KEY + ending).encode())
        assert resolve_id_hash_key(Settings(id_hash_key_file=path)) == KEY


def test_the_environment_names_the_key_its_file_and_the_opt_in(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "id-hash.key"
    path.write_text(KEY + "\n")
    monkeypatch.setenv("ONEWINDOW_ID_HASH_KEY_FILE", str(path))
    monkeypatch.setenv("ONEWINDOW_INSECURE_DEV_KEY", "true")
    s = Settings()
    assert s.id_hash_key is None and s.id_hash_key_file == path and s.insecure_dev_key
    assert resolve_id_hash_key(s) == KEY
    monkeypatch.setenv("ONEWINDOW_ID_HASH_KEY", "b" * MIN_KEY_LENGTH)
    assert resolve_id_hash_key(Settings()) == "b" * MIN_KEY_LENGTH


@pytest.mark.parametrize("content", ["", "\n", "short-key\n", "x" * (MIN_KEY_LENGTH - 1)])
def test_an_empty_or_short_key_file_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "id-hash.key"
    path.write_text(content)
    with pytest.raises(IdHashKeyError) as exc:
        resolve_id_hash_key(Settings(id_hash_key_file=path, insecure_dev_key=True))
    text = _one_line(exc)
    assert str(path) in text and f"at least {MIN_KEY_LENGTH}" in text
    assert content.strip() == "" or content.strip() not in text  # never echoes the key


@pytest.mark.parametrize("key", ["", "short", "x" * (MIN_KEY_LENGTH - 1)])
def test_an_empty_or_short_key_is_refused(key: str) -> None:
    with pytest.raises(IdHashKeyError) as exc:
        resolve_id_hash_key(Settings(id_hash_key=SecretStr(key)))
    text = _one_line(exc)
    assert "ONEWINDOW_ID_HASH_KEY" in text and f"at least {MIN_KEY_LENGTH}" in text


def test_an_unreadable_key_file_is_refused_in_one_line(tmp_path: Path) -> None:
    for path in (tmp_path / "missing", tmp_path):  # absent; a directory
        with pytest.raises(IdHashKeyError) as exc:
            resolve_id_hash_key(Settings(id_hash_key_file=path))
        assert f"cannot read the ID hash key file {path}" in _one_line(exc)
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff" * 40)
    with pytest.raises(IdHashKeyError, match="not UTF-8"):
        resolve_id_hash_key(Settings(id_hash_key_file=binary))


def test_no_key_is_refused_naming_the_three_ways_out() -> None:
    with pytest.raises(IdHashKeyError) as exc:
        resolve_id_hash_key(Settings())
    text = _one_line(exc)
    for way in ("ONEWINDOW_ID_HASH_KEY ", "ONEWINDOW_ID_HASH_KEY_FILE", "`onewindow up`",
                "--insecure-dev-key"):
        assert way in text
    with pytest.raises(IdHashKeyError):
        IdProtector.from_settings(Settings())


def test_the_development_key_only_when_opted_in(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="onewindow.security.id_key"):
        assert resolve_id_hash_key(Settings(insecure_dev_key=True)) == DEV_KEY
    (record,) = caplog.records
    assert "development key" in record.getMessage() and "\n" not in record.getMessage()
    assert IdProtector.from_settings(Settings(insecure_dev_key=True)).is_dev_key


def test_the_development_key_written_out_still_needs_the_opt_in() -> None:
    with pytest.raises(IdHashKeyError, match="is the built-in development key.*--insecure"):
        resolve_id_hash_key(Settings(id_hash_key=SecretStr(DEV_KEY)))
    assert resolve_id_hash_key(Settings(id_hash_key=SecretStr(DEV_KEY),
                                        insecure_dev_key=True)) == DEV_KEY


def test_ensure_key_file_creates_a_private_random_key_once(tmp_path: Path) -> None:
    path = stack_key_file(Settings(data_dir=tmp_path / "var"))
    assert path == tmp_path / "var" / "secrets" / "id-hash.key"
    assert ensure_key_file(path) is True
    key = resolve_id_hash_key(Settings(id_hash_key_file=path))
    assert len(key) == 64 and bytes.fromhex(key)  # 32 random bytes as hex
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert ensure_key_file(path) is False  # reused, never replaced
    assert resolve_id_hash_key(Settings(id_hash_key_file=path)) == key
    assert sorted(os.listdir(path.parent)) == ["id-hash.key"]  # no temporary file left
    other = tmp_path / "other" / "id-hash.key"
    ensure_key_file(other)
    assert other.read_text() != path.read_text()


def test_ensure_key_file_never_overwrites_even_a_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "id-hash.key"
    path.parent.mkdir()
    path.write_text("")
    assert ensure_key_file(path) is False
    assert path.read_text() == ""
    with pytest.raises(IdHashKeyError, match="is empty"):
        resolve_id_hash_key(Settings(id_hash_key_file=path))


def test_a_benchmark_gets_a_fresh_key_of_its_own(tmp_path: Path) -> None:
    base = Settings(id_hash_key_file=tmp_path / "missing")
    one, two = with_new_key(base), with_new_key(base)
    assert one.id_hash_key_file is None
    k1, k2 = resolve_id_hash_key(one), resolve_id_hash_key(two)
    assert k1 != k2 and len(k1) == 64


def test_an_early_check_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="onewindow.security.id_key"):
        assert resolve_id_hash_key(Settings(insecure_dev_key=True), warn=False) == DEV_KEY
    assert caplog.records == []
    with pytest.raises(IdHashKeyError):
        resolve_id_hash_key(Settings(), warn=False)
