"""The Java lookup of tests/keycloak_support.py: Keycloak needs Java 21+, Debian 12 ships
17; a missing one must fail the Keycloak fixture with a clear message, never skip."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.keycloak_support import JAVA_HOME_ENV, KeycloakError, find_java_home, java_major


def jdk(root: Path, name: str, version: str) -> Path:
    home = root / name
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "java").write_text("")
    (home / "release").write_text(f'IMPLEMENTOR="x"\nJAVA_VERSION="{version}"\n')
    return home


def test_major_versions(tmp_path: Path) -> None:
    assert java_major(jdk(tmp_path, "a", "25.0.3")) == 25
    assert java_major(jdk(tmp_path, "b", "1.8.0_392")) == 8
    assert java_major(jdk(tmp_path, "c", "21")) == 21
    assert java_major(tmp_path / "missing") is None


def test_newest_jdk_of_at_least_21(tmp_path: Path) -> None:
    jdk(tmp_path, "java-17-openjdk-amd64", "17.0.15")
    jdk(tmp_path, "temurin-21-jdk-amd64", "21.0.4")
    newest = jdk(tmp_path, "temurin-25-jdk-amd64", "25.0.3")
    (tmp_path / "default-java").symlink_to(newest)
    assert find_java_home({}, tmp_path).name == "temurin-25-jdk-amd64"


def test_none_new_enough_is_an_error_naming_the_fix(tmp_path: Path) -> None:
    jdk(tmp_path, "java-17-openjdk-amd64", "17.0.15")
    with pytest.raises(KeycloakError, match=JAVA_HOME_ENV):
        find_java_home({}, tmp_path)
    with pytest.raises(KeycloakError, match="21"):
        find_java_home({}, tmp_path / "no-such-dir")


def test_the_environment_wins_and_is_checked(tmp_path: Path) -> None:
    jdk(tmp_path, "temurin-25-jdk-amd64", "25.0.3")
    chosen = jdk(tmp_path / "elsewhere", "jdk-21", "21.0.1")
    assert find_java_home({JAVA_HOME_ENV: str(chosen)}, tmp_path) == chosen
    old = jdk(tmp_path / "elsewhere", "jdk-17", "17.0.1")
    with pytest.raises(KeycloakError, match="not a Java 21"):
        find_java_home({JAVA_HOME_ENV: str(old)}, tmp_path)
