"""`onewindow up`'s first administrator (onewindow_cli/stack.py, `first_admin`): created
with a generated password only while the user store is empty, never an auditor."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from onewindow.config import Settings
from onewindow.read_model.engine import make_engine
from onewindow.staff import users
from onewindow_cli.stack import first_admin


def test_the_first_admin_is_made_once_with_a_password_that_signs_in(tmp_path: Path) -> None:
    s = Settings(database_url=f"sqlite:///{tmp_path / 'model.db'}")
    password = first_admin(s)
    assert password is not None and len(password) >= 20
    assert first_admin(s) is None  # the store is no longer empty: nothing printed again
    engine = make_engine(s.database_url)
    [admin] = users.list_users(engine)
    assert admin.username == "admin" and set(admin.roles) == {"supervisor", "ops"}
    principal = users.authenticate(engine, "admin", password, datetime.now(UTC))
    assert principal is not None and principal.name == "admin"
    assert users.authenticate(engine, "admin", password + "x", datetime.now(UTC)) is None
