"""Staff users for tests that call the counter API: a user with the given roles in the
staff store of a database, and the bearer header of a fresh API token of theirs."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from counter import staff_migrations
from onewindow.read_model.engine import make_engine
from onewindow.staff import users

#: meets the password policy (onewindow.security.passwords)
PASSWORD = "Staff-test-2025"


def bearer_for(database_url: str, *roles: str, name: str | None = None) -> dict[str, str]:
    """``{"Authorization": "Bearer owt_..."}`` of a new user holding ``roles``."""
    engine = make_engine(database_url, writer=True)
    try:
        staff_migrations.upgrade(engine)
        now = datetime.now(UTC)
        name = name or f"t-{'-'.join(roles)}-{secrets.token_hex(3)}"
        users.add_user(engine, name, list(roles), PASSWORD, now)
        return {"Authorization": f"Bearer {users.issue_token(engine, name, 'test', now)}"}
    finally:
        engine.dispose()
