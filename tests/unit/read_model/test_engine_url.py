"""A database URL as the processes show it (onewindow.read_model.engine.shown_url)."""

from __future__ import annotations

from onewindow.read_model.engine import shown_url


def test_the_password_of_a_database_url_is_never_shown() -> None:
    """`onewindow up` printed the read model's URL with its password."""
    url = "postgresql+psycopg://onewindow:s3cret-pw@db.example:5432/onewindow"
    assert shown_url(url) == "postgresql+psycopg://onewindow:***@db.example:5432/onewindow"
    assert "s3cret" not in shown_url(url)
    assert shown_url("sqlite:////var/lib/onewindow/model.db") == \
        "sqlite:////var/lib/onewindow/model.db"
