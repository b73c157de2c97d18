"""The gateway's key store (gateway.keys, gateway.key_migrations) on SQLite and
PostgreSQL, and `onewindow gateway-keys`: keys are shown once and kept hashed, the
department comes from the key, revoked keys (now or after a rotation's grace) are told
apart from unknown ones, and a read-model rebuild leaves the keys alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, select

from gateway import key_migrations, keys
from onewindow.read_model.engine import make_engine
from onewindow_cli.cli import main
from sinks.migrations import downgrade, upgrade

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def test_the_migration_matches_the_table_and_survives_a_rebuild(engine: Engine) -> None:
    key_migrations.upgrade(engine)
    key_migrations.upgrade(engine)  # idempotent
    assert key_migrations.current_revision(engine) == key_migrations.head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                keys.metadata)
    ours = [d for d in diff if not (d[0] in ("remove_table", "remove_index")
                                    and getattr(d[1], "table", d[1]).name
                                    not in keys.metadata.tables)]
    assert ours == []
    issued = keys.issue(engine, "scjgj", "approval system", NOW)
    downgrade(engine)  # what `onewindow rebuild` does to the read model
    upgrade(engine)
    assert keys.authenticate(engine, issued.key, NOW) == keys.Authenticated(
        "scjgj", issued.key_id, revoked=False)


def test_keys_are_kept_hashed_and_tell_their_department(engine: Engine) -> None:
    key_migrations.upgrade(engine)
    a = keys.issue(engine, "scjgj", "", NOW)
    b = keys.issue(engine, "gaj", "", NOW)
    assert a.key.startswith(f"owg_{a.key_id}_") and len(a.key) > 50 and a.key != b.key
    with engine.connect() as c:
        stored = [tuple(r) for r in c.execute(select(keys.KEYS))]
    assert not any(a.key in str(row) or b.key in str(row) for row in stored)
    assert keys.authenticate(engine, b.key, NOW).department == "gaj"  # type: ignore[union-attr]
    for wrong in ("", a.key + "x", a.key[:-1], "owg_" + "0" * 300, "Bearer " + a.key):
        assert keys.authenticate(engine, wrong, NOW) is None
    with pytest.raises(keys.KeyStoreError, match="department code"):
        keys.issue(engine, "SCJGJ; drop", "", NOW)


def test_revoke_and_rotate(engine: Engine) -> None:
    key_migrations.upgrade(engine)
    a = keys.issue(engine, "scjgj", "old", NOW)
    other = keys.issue(engine, "gaj", "", NOW)
    new, n = keys.rotate(engine, "scjgj", "new", NOW, timedelta(minutes=30))
    assert n == 1
    assert not keys.authenticate(engine, a.key, NOW + timedelta(minutes=29)).revoked  # type: ignore[union-attr]
    assert keys.authenticate(engine, a.key, NOW + timedelta(minutes=30)).revoked  # type: ignore[union-attr]
    assert keys.revoke(engine, "scjgj", NOW, key_id=a.key_id) == 1  # brought forward
    assert keys.authenticate(engine, a.key, NOW).revoked  # type: ignore[union-attr]
    assert not keys.authenticate(engine, new.key, NOW).revoked  # type: ignore[union-attr]
    assert keys.revoke(engine, "scjgj", NOW) == 1  # the new one; the old one already
    assert keys.authenticate(engine, new.key, NOW).revoked  # type: ignore[union-attr]
    assert not keys.authenticate(engine, other.key, NOW).revoked  # type: ignore[union-attr]
    with pytest.raises(keys.KeyStoreError, match="has no key"):
        keys.revoke(engine, "scjgj", NOW, key_id="0123456789")
    listed = keys.list_keys(engine, "scjgj")
    assert sorted(k.label for k in listed) == ["new", "old"]
    assert not any(k.live(NOW) for k in listed)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_command_line(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    db = ["--database-url", database_url]
    assert main(["gateway-keys", "issue", "scjgj", "--label", "审批系统", *db]) == 0
    out = capsys.readouterr().out
    key = out.strip().splitlines()[-1]
    assert "shown once" in out and key.startswith("owg_")
    assert main(["gateway-keys", "list", *db]) == 0
    listing = capsys.readouterr().out
    assert "scjgj" in listing and "live" in listing and "审批系统" in listing
    assert key not in listing
    assert main(["gateway-keys", "rotate", "scjgj", "--grace-minutes", "10", *db]) == 0
    assert "1 older key(s) of scjgj stop working at" in capsys.readouterr().out
    assert main(["gateway-keys", "revoke", "scjgj", *db]) == 0
    assert "2 key(s) of scjgj revoked" in capsys.readouterr().out
    assert main(["gateway-keys", "issue", "nobody", *db]) == 2
    assert "nobody: not a registered department" in capsys.readouterr().err
    engine = make_engine(database_url)
    try:
        assert keys.authenticate(engine, key, datetime.now(UTC)).revoked  # type: ignore[union-attr]
    finally:
        engine.dispose()
