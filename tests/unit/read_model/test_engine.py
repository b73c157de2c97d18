"""The read model's engine helpers (onewindow.read_model.engine): a URL as the processes
show it, and the wait for a database."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from onewindow.errors import ConfigError
from onewindow.read_model.engine import shown_url, wait_for_database


def test_the_password_of_a_database_url_is_never_shown() -> None:
    """`onewindow up` printed the read model's URL with its password."""
    url = "postgresql+psycopg://onewindow:s3cret-pw@db.example:5432/onewindow"
    assert shown_url(url) == "postgresql+psycopg://onewindow:***@db.example:5432/onewindow"
    assert "s3cret" not in shown_url(url)
    assert shown_url("sqlite:////var/lib/onewindow/model.db") == \
        "sqlite:////var/lib/onewindow/model.db"
    # libpq takes a password as a query parameter too (a newcomer's finding)
    assert shown_url("postgresql+psycopg://u@h/db?password=s3cret&sslmode=require") == \
        "postgresql+psycopg://u@h/db?password=***&sslmode=require"


def test_a_sqlite_file_that_cannot_be_opened_is_refused_at_once(tmp_path: Path) -> None:
    """`sqlite:////proc/model.db` made the counter retry for ever; a file is no server
    that might come up. A file that opens is connected to at once."""
    said: list[str] = []
    with pytest.raises(ConfigError, match=r"sqlite:////proc/model.db cannot be opened"):
        wait_for_database("sqlite:////proc/model.db", stop=threading.Event(), say=said.append)
    assert said == []
    junk = tmp_path / "junk.db"
    junk.write_bytes(bytes(range(256)) * 32)  # not a database: DatabaseError, not Operational
    with pytest.raises(ConfigError, match=r"junk.db cannot be opened \(file is not a database\)"):
        wait_for_database(f"sqlite:///{junk}", stop=threading.Event(), say=said.append)
    assert wait_for_database(f"sqlite:///{tmp_path / 'model.db'}", stop=threading.Event())
