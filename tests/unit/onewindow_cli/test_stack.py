"""`onewindow up`'s ID hash key (onewindow_cli/stack.py, `id_key_env`): generated once into
the data directory, private, reused; the children get its path, never the key; the
operator's own key wins. The function is tested directly: no stack is started."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from onewindow.cli_options import settings_from
from onewindow.config import Settings
from onewindow.security.id_key import IdHashKeyError, resolve_id_hash_key
from onewindow_cli.cli import build_parser
from onewindow_cli.stack import id_key_env

KEY_ENV = ("ONEWINDOW_ID_HASH_KEY", "ONEWINDOW_ID_HASH_KEY_FILE", "ONEWINDOW_INSECURE_DEV_KEY")


@pytest.fixture(autouse=True)
def _no_key_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in KEY_ENV:
        monkeypatch.delenv(var, raising=False)


def test_up_generates_the_key_file_once_and_reuses_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = Settings(data_dir=tmp_path / "var")
    env = id_key_env(s)
    path = tmp_path / "var" / "secrets" / "id-hash.key"
    assert env == {"ONEWINDOW_ID_HASH_KEY_FILE": str(path.resolve())}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    key = path.read_text()
    assert key not in "".join(env.values())  # the path, never the key
    assert f"generated the ID hash key {path}" in capsys.readouterr().out
    child = Settings(id_hash_key_file=Path(env["ONEWINDOW_ID_HASH_KEY_FILE"]))
    assert resolve_id_hash_key(child) == key.strip()

    assert id_key_env(s) == env  # the second start: the same file, untouched
    assert path.read_text() == key
    assert capsys.readouterr().out == ""


def test_up_uses_the_operators_key_and_generates_nothing(tmp_path: Path) -> None:
    own = tmp_path / "own.key"
    own.write_text("c" * 64 + "\n")
    for s in (Settings(data_dir=tmp_path / "var", id_hash_key=SecretStr("d" * 40)),
              Settings(data_dir=tmp_path / "var", id_hash_key_file=own)):
        assert id_key_env(s) == {}  # already in the children's environment
    assert not (tmp_path / "var" / "secrets").exists()


def test_up_refuses_a_bad_operator_key_before_starting_anything(tmp_path: Path) -> None:
    with pytest.raises(IdHashKeyError):
        id_key_env(Settings(data_dir=tmp_path / "var", id_hash_key=SecretStr("short")))
    with pytest.raises(IdHashKeyError):
        id_key_env(Settings(data_dir=tmp_path / "var", id_hash_key_file=tmp_path / "none"))


def test_up_passes_the_development_key_on_only_when_asked(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path / "var", insecure_dev_key=True)
    assert id_key_env(s) == {"ONEWINDOW_INSECURE_DEV_KEY": "true"}
    assert not (tmp_path / "var" / "secrets").exists()


def test_every_command_with_the_common_options_takes_insecure_dev_key() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    with_common = [name for name, p in sub.choices.items()
                   if any("--bootstrap" in a.option_strings for a in p._actions)]
    assert {"worker", "materials-worker", "sink", "rebuild", "counter", "up", "bench",
            "bench-materials"} <= set(with_common)
    for name in with_common:
        p = sub.choices[name]
        assert any("--insecure-dev-key" in a.option_strings for a in p._actions), name
    args = parser.parse_args(["sink", "--insecure-dev-key"])
    assert args.insecure_dev_key is True and settings_from(args).insecure_dev_key is True
    assert parser.parse_args(["sink"]).insecure_dev_key is None
