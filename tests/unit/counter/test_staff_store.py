"""The staff store (onewindow.staff, counter.staff_migrations) on SQLite and PostgreSQL:
its migration creates exactly its tables, leaves the read model's alone and survives a
read-model rebuild; the user store's rules (names, roles, password policy, lockout)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from counter import staff_migrations
from onewindow.domain.access import LockoutPolicy, Role, parse_roles
from onewindow.security.passwords import WeakPassword
from onewindow.staff import access_log, sessions, users
from onewindow.staff.tables import metadata
from sinks.migrations import downgrade, upgrade
from tests.unit.counter.helpers import PASSWORD

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def test_the_migration_matches_the_tables_and_survives_a_rebuild(engine) -> None:
    staff_migrations.upgrade(engine)
    staff_migrations.upgrade(engine)  # idempotent
    assert staff_migrations.current_revision(engine) == staff_migrations.head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                metadata)
    # the read model's tables and indexes are another history's: only ours must match
    ours = [d for d in diff if not (d[0] in ("remove_table", "remove_index")
                                    and d[1].name not in metadata.tables
                                    and getattr(d[1], "table", d[1]).name
                                    not in metadata.tables)]
    assert ours == []
    users.add_user(engine, "keeper", ["clerk"], PASSWORD, NOW)
    downgrade(engine)  # what `onewindow rebuild` does to the read model
    upgrade(engine)
    assert [u.username for u in users.list_users(engine)] == ["keeper"]


def test_user_store_rules(engine) -> None:
    staff_migrations.upgrade(engine)
    with pytest.raises(users.UserStoreError, match="user name"):
        users.add_user(engine, "Bad Name", ["clerk"], PASSWORD, NOW)
    with pytest.raises(users.UserStoreError, match="unknown role 'admin'"):
        users.add_user(engine, "ok", ["clerk", "admin"], PASSWORD, NOW)
    with pytest.raises(users.UserStoreError, match="at least one role"):
        users.add_user(engine, "ok", [], PASSWORD, NOW)
    for weak in ("short1A!", "alllowercaseletters", "ALLUPPER12345"):
        with pytest.raises(WeakPassword):
            users.add_user(engine, "ok", ["clerk"], weak, NOW)
    users.add_user(engine, "ok", ["Clerk ", "ops"], PASSWORD, NOW)
    with pytest.raises(users.UserStoreError, match="already exists"):
        users.add_user(engine, "ok", ["clerk"], PASSWORD, NOW)
    [view] = users.list_users(engine)
    assert view.roles == ("clerk", "ops") and not view.disabled
    with pytest.raises(users.UserStoreError, match="no user 'ghost'"):
        users.reset_password(engine, "ghost", PASSWORD, NOW)


def test_reset_password_ends_sessions_and_clears_the_lockout(engine) -> None:
    staff_migrations.upgrade(engine)
    users.add_user(engine, "u1", ["clerk"], PASSWORD, NOW)
    p = users.authenticate(engine, "u1", PASSWORD, NOW)
    token, _ = sessions.open_session(engine, p, NOW)
    for _ in range(5):
        assert users.authenticate(engine, "u1", "nope", NOW) is None
    assert users.authenticate(engine, "u1", PASSWORD, NOW) is None  # locked
    users.reset_password(engine, "u1", "Another-pass-42", NOW)
    assert sessions.resolve(engine, token, NOW) is None
    assert users.authenticate(engine, "u1", "Another-pass-42", NOW) is not None


def test_sessions_end_when_idle_or_old(engine) -> None:
    staff_migrations.upgrade(engine)
    users.add_user(engine, "u2", ["clerk"], PASSWORD, NOW)
    p = users.authenticate(engine, "u2", PASSWORD, NOW)
    policy = sessions.SessionPolicy(idle=timedelta(minutes=30), absolute=timedelta(hours=2))
    token, csrf = sessions.open_session(engine, p, NOW, policy)
    t = NOW
    for _ in range(3):  # active every 25 minutes: alive
        t += timedelta(minutes=25)
        assert sessions.resolve(engine, token, t, policy) == (p, csrf)
    assert sessions.resolve(engine, token, NOW + timedelta(hours=2), policy) is None
    token, _ = sessions.open_session(engine, p, NOW, policy)
    assert sessions.resolve(engine, token, NOW + timedelta(minutes=31), policy) is None


def test_lockout_policy_and_roles_are_pure_rules() -> None:
    policy = LockoutPolicy(max_failures=3, lock_for=timedelta(minutes=10))
    assert policy.after_failure(0, NOW) == (1, None)
    assert policy.after_failure(2, NOW) == (3, NOW + timedelta(minutes=10))
    assert policy.is_locked(NOW + timedelta(minutes=1), NOW)
    assert not policy.is_locked(NOW, NOW) and not policy.is_locked(None, NOW)
    assert parse_roles(["CLERK", " ops", "offline_access", "uma_authorization"]) == {
        Role.CLERK, Role.OPS}


def test_retention_purge_deletes_only_rows_past_it(engine) -> None:
    staff_migrations.upgrade(engine)
    now = datetime.now(UTC)  # the database's guard compares with its own clock
    for days in (400, 200, 179, 0):
        access_log.append(engine, access_log.CITIZEN,
                          access_log.Entry("lookup", f"D{days}", "ok"), "127.0.0.1",
                          now - timedelta(days=days))
    with pytest.raises(ValueError, match="at least 180"):
        access_log.purge(engine, now, 90)
    assert access_log.purge(engine, now, 365) == 1
    assert access_log.purge(engine, now, 180) == 1
    with engine.connect() as c:
        assert [r["target"] for r in access_log.query(c)] == ["D0", "D179"]


def test_a_lock_that_ran_out_starts_the_count_over(engine) -> None:
    staff_migrations.upgrade(engine)
    users.add_user(engine, "u3", ["clerk"], PASSWORD, NOW)
    policy = LockoutPolicy(max_failures=3, lock_for=timedelta(minutes=15))
    for _ in range(3):
        users.authenticate(engine, "u3", "nope", NOW, policy)
    assert users.authenticate(engine, "u3", PASSWORD, NOW, policy) is None  # locked
    later = NOW + timedelta(minutes=16)
    assert users.authenticate(engine, "u3", "nope", later, policy) is None  # one failure
    assert users.authenticate(engine, "u3", PASSWORD, later, policy) is not None
