"""Department credentials of the gateway: API keys, issued, listed, rotated and revoked by
the operator (``onewindow gateway-keys``), checked on every request.

A key is ``owg_<key id>_<secret>``: ``owg_`` so a key found in a log or a repository is
recognisable, a public key id (10 hexadecimal characters) to name it in listings and
revocations, and 256 random bits. The store keeps only the SHA-256 of the whole key, never
the key: it is shown once, when issued. A plain hash, not argon2: argon2's cost protects
guessable passwords from a stolen table; 256 random bits cannot be guessed at any hashing
speed, and a per-request argon2 (tens of milliseconds and 64 MiB) would be the gateway's
largest cost. (The counter's API tokens are kept the same way: ``onewindow.staff.users``.)
A pepper would add a second secret to keep and rotate for no gain against guessing.

The department comes from the key alone. A key is revoked from its ``revoked_at`` on (403
after it); ``rotate`` issues a new key and revokes the department's other live keys after
a grace period, so its systems can switch over without an outage.

The table lives in the read model's database with a migration history of its own
(``gateway.key_migrations``, version table ``alembic_version_gateway``), so ``onewindow
rebuild`` never touches it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    Column,
    Engine,
    Index,
    MetaData,
    String,
    Table,
    Text,
    insert,
    or_,
    select,
    update,
)

from onewindow.errors import OneWindowError
from onewindow.read_model.tables import NAMING
from onewindow.read_model.types import UTCDateTime

__all__ = ["KEYS", "PREFIX", "Authenticated", "IssuedKey", "KeyStoreError", "KeyView",
           "authenticate", "issue", "key_hash", "list_keys", "metadata", "revoke", "rotate"]

PREFIX = "owg_"
#: the longest key accepted before it is hashed (ours are 58 characters)
MAX_KEY_CHARS = 200
_DEPARTMENT = re.compile(r"^[a-z0-9-]{1,64}$")
_KEY_ID = re.compile(r"^[0-9a-f]{10}$")

metadata = MetaData(naming_convention=NAMING)

KEYS = Table(
    "gateway_keys", metadata,
    Column("key_id", String(16), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),  # sha256 hex of the key
    Column("department", String(64), nullable=False),
    Column("label", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),  # revoked from this instant on
    Index(None, "department"),
)


class KeyStoreError(OneWindowError):
    """A request to the key store the operator can fix (a bad department or key id)."""


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key: show ``key`` once, it is not kept."""

    key_id: str
    department: str
    key: str


@dataclass(frozen=True, slots=True)
class KeyView:
    key_id: str
    department: str
    label: str
    created_at: datetime
    revoked_at: datetime | None

    def live(self, now: datetime) -> bool:
        return self.revoked_at is None or self.revoked_at > now


@dataclass(frozen=True, slots=True)
class Authenticated:
    """Who presented a key: its department and key id, and whether it is revoked."""

    department: str
    key_id: str
    revoked: bool


def key_hash(key: str) -> str:
    """SHA-256 hex of a key (what the store keeps)."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _check_department(department: str) -> None:
    if not _DEPARTMENT.match(department):
        raise KeyStoreError(f"not a department code: {department!r}")


def issue(engine: Engine, department: str, label: str, now: datetime) -> IssuedKey:
    """A new live key for ``department`` (a registered code: the caller checks)."""
    _check_department(department)
    key_id = secrets.token_hex(5)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    with engine.begin() as c:
        c.execute(insert(KEYS).values(key_id=key_id, key_hash=key_hash(key),
                                      department=department, label=label or "",
                                      created_at=now, revoked_at=None))
    return IssuedKey(key_id, department, key)


def list_keys(engine: Engine, department: str | None = None) -> list[KeyView]:
    """Every key (of ``department``), oldest first; never the keys themselves."""
    q = select(KEYS.c.key_id, KEYS.c.department, KEYS.c.label, KEYS.c.created_at,
               KEYS.c.revoked_at).order_by(KEYS.c.created_at, KEYS.c.key_id)
    if department is not None:
        q = q.where(KEYS.c.department == department)
    with engine.connect() as c:
        return [KeyView(*row) for row in c.execute(q)]


def revoke(engine: Engine, department: str, now: datetime, *, key_id: str | None = None,
           at: datetime | None = None) -> int:
    """Revoke the live keys of ``department`` (only ``key_id`` when given) from ``at``
    (default ``now``); how many were live. A key already revoked later than ``at`` is
    brought forward."""
    _check_department(department)
    if key_id is not None and not _KEY_ID.match(key_id):
        raise KeyStoreError(f"not a key id: {key_id!r} (10 hexadecimal characters)")
    at = at or now
    q = (update(KEYS).where(KEYS.c.department == department,
                            or_(KEYS.c.revoked_at.is_(None), KEYS.c.revoked_at > at))
         .values(revoked_at=at))
    if key_id is not None:
        q = q.where(KEYS.c.key_id == key_id)
    with engine.begin() as c:
        n = c.execute(q).rowcount
    if key_id is not None and n == 0 and not any(
            k.key_id == key_id for k in list_keys(engine, department)):
        raise KeyStoreError(f"department {department} has no key {key_id}")
    return n


def rotate(engine: Engine, department: str, label: str, now: datetime,
           grace: timedelta) -> tuple[IssuedKey, int]:
    """A new key for ``department``; its other live keys are revoked ``grace`` from now.
    Returns the new key and how many keys will be revoked."""
    old = [k.key_id for k in list_keys(engine, department) if k.live(now)]
    new = issue(engine, department, label, now)
    n = sum(revoke(engine, department, now, key_id=k, at=now + grace) for k in old)
    return new, n


def authenticate(engine: Engine, key: str, now: datetime) -> Authenticated | None:
    """Whose key ``key`` is, or ``None`` for a string that is no key of the store."""
    if not key.startswith(PREFIX) or len(key) > MAX_KEY_CHARS:
        return None
    with engine.connect() as c:
        row = c.execute(select(KEYS.c.department, KEYS.c.key_id, KEYS.c.revoked_at)
                        .where(KEYS.c.key_hash == key_hash(key))).first()
    if row is None:
        return None
    return Authenticated(row.department, row.key_id,
                         row.revoked_at is not None and row.revoked_at <= now)
