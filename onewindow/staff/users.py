"""The local user store: add, disable, enable, reset a password, list; sign in with the
lockout rule (:class:`onewindow.domain.access.LockoutPolicy`); API tokens for programs
(Prometheus, scripts) that read the counter API.

Every function takes the engine and the current instant, so the rules are tested
without waiting. Errors are :class:`UserStoreError` with one readable line.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from onewindow.domain.access import LockoutPolicy, Principal, Role, parse_roles
from onewindow.errors import OneWindowError
from onewindow.security import passwords
from onewindow.staff.tables import API_TOKENS, SESSIONS, USERS

__all__ = ["TOKEN_PREFIX", "UserStoreError", "UserView", "add_user", "authenticate", "ensure_first_user",
           "issue_token", "list_users", "principal_for_token", "reset_password",
           "revoke_tokens", "set_disabled", "set_window", "token_hash", "user_count"]

#: a user name (``\Z`` ends both patterns, not ``$``, which would let a newline end them)
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}\Z")
#: a counter window's id as the acceptance records carry it (``W07``, ``3号窗口``)
WINDOW_ID = re.compile(r"^[^\s\x00-\x1f\x7f]{1,64}\Z")
#: API tokens start with this, so a token found in a log or a repository is recognisable
TOKEN_PREFIX = "owt_"  # noqa: S105 - a prefix, not a secret


DEFAULT_LOCKOUT = LockoutPolicy()


class UserStoreError(OneWindowError):
    """A user-store request that cannot be done (unknown user, bad name, no role ...)."""


@dataclass(frozen=True)
class UserView:
    username: str
    display_name: str
    roles: tuple[str, ...]
    disabled: bool
    locked_until: datetime | None
    last_login_at: datetime | None
    created_at: datetime
    window_id: str | None = None


def token_hash(token: str) -> str:
    """SHA-256 hex of a session or API token (the store keeps only this)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _roles_text(roles: list[str] | tuple[str, ...]) -> str:
    parsed = parse_roles(roles)
    unknown = sorted({r.strip().lower() for r in roles} - {r.value for r in parsed})
    if unknown:
        raise UserStoreError(f"unknown role {unknown[0]!r}; roles are "
                             + ", ".join(r.value for r in Role))
    if not parsed:
        raise UserStoreError("a user needs at least one role")
    return ",".join(sorted(r.value for r in parsed))


def _principal(row: Any, source: str = "local") -> Principal:
    """``name`` is the display name (what the screen and the access log show; the
    subject ``local:<username>`` identifies)."""
    return Principal(subject=f"local:{row.username}", name=row.display_name or row.username,
                     roles=parse_roles(row.roles.split(",")), source=source,
                     window_id=row.window_id)


def _window(window_id: str | None) -> str | None:
    """``window_id`` checked (None: no window). An empty id is refused, not taken for
    none: clearing a window is said with None (``users set-window NAME --none``)."""
    if window_id is None:
        return None
    if window_id == "":
        raise UserStoreError("an empty window id: name one (W07); for no window leave "
                             "--window out (users add) or give --none (users set-window)")
    if not WINDOW_ID.match(window_id):
        raise UserStoreError("a window id is 1-64 characters without blanks or control "
                             "characters (as the acceptance records name it, e.g. W07)")
    return window_id


def add_user(engine: Engine, username: str, roles: list[str], password: str, now: datetime,
             display_name: str | None = None, window_id: str | None = None) -> None:
    """Create a user (``window_id``: the counter window they work at, or none). Raises
    :class:`UserStoreError` for a bad or taken name, an unknown role or a bad window id,
    and :class:`~onewindow.security.passwords.WeakPassword` for a weak password."""
    if not USERNAME.match(username):
        raise UserStoreError(f"user name {username!r}: 2-64 of a-z 0-9 . _ -, starting "
                             "with a letter or digit")
    roles_text = _roles_text(roles)
    window = _window(window_id)
    passwords.validate(password)
    try:
        with engine.begin() as c:
            c.execute(insert(USERS).values(
                username=username, display_name=display_name or username, roles=roles_text,
                password_hash=passwords.hash_password(password), disabled=False,
                failed_logins=0, password_changed_at=now, created_at=now, window_id=window))
    except IntegrityError:
        raise UserStoreError(f"user {username!r} already exists") from None


def _existing(c: Any, username: str) -> Any:
    row = c.execute(select(USERS).where(USERS.c.username == username)).first()
    if row is None:
        raise UserStoreError(f"no user {username!r}")
    return row


def _end_sessions(c: Any, username: str) -> None:
    c.execute(SESSIONS.delete().where(SESSIONS.c.subject == f"local:{username}"))


def set_disabled(engine: Engine, username: str, disabled: bool,
                 now: datetime | None = None) -> None:
    """Disable (sessions end, API tokens are revoked: enabling again brings none back) or
    enable a user; enabling also clears a lockout."""
    now = now or datetime.now(UTC)
    with engine.begin() as c:
        _existing(c, username)
        values: dict[str, Any] = {"disabled": disabled}
        if not disabled:
            values |= {"failed_logins": 0, "locked_until": None}
        c.execute(update(USERS).where(USERS.c.username == username).values(**values))
        if disabled:  # sessions end, API tokens are revoked for good
            _end_sessions(c, username)
            c.execute(update(API_TOKENS).where(API_TOKENS.c.username == username,
                                               API_TOKENS.c.revoked_at.is_(None))
                      .values(revoked_at=now))


def set_window(engine: Engine, username: str, window_id: str | None) -> None:
    """Set (or with ``None`` clear) the counter window of a user. Sessions keep the
    window they were opened with until the next sign-in; API tokens see it at once."""
    window = _window(window_id)
    with engine.begin() as c:
        _existing(c, username)
        c.execute(update(USERS).where(USERS.c.username == username).values(window_id=window))


def reset_password(engine: Engine, username: str, password: str, now: datetime) -> None:
    """Set a new password, clear a lockout and end the user's sessions."""
    passwords.validate(password)
    with engine.begin() as c:
        _existing(c, username)
        c.execute(update(USERS).where(USERS.c.username == username).values(
            password_hash=passwords.hash_password(password), password_changed_at=now,
            failed_logins=0, locked_until=None))
        _end_sessions(c, username)


def list_users(engine: Engine) -> list[UserView]:
    with engine.connect() as c:
        rows = c.execute(select(USERS).order_by(USERS.c.username)).all()
    return [UserView(r.username, r.display_name, tuple(r.roles.split(",")), r.disabled,
                     r.locked_until, r.last_login_at, r.created_at, r.window_id)
            for r in rows]


def user_count(engine: Engine) -> int:
    with engine.connect() as c:
        return len(c.execute(select(USERS.c.username)).all())


def authenticate(engine: Engine, username: str, password: str, now: datetime,
                 policy: LockoutPolicy = DEFAULT_LOCKOUT) -> Principal | None:
    """The principal when ``password`` is right and the account is enabled and not
    locked; ``None`` otherwise (the caller answers every failure alike). A wrong password
    counts towards the lockout; a right one resets the count."""
    with engine.begin() as c:
        row = c.execute(select(USERS).where(USERS.c.username == username)).first()
        if row is None:
            passwords.dummy_verify(password)
            return None
        ok = passwords.verify(row.password_hash, password)
        if row.disabled or policy.is_locked(row.locked_until, now):
            return None
        where = USERS.c.username == username
        if not ok:
            # a lock that has run out starts the count over: one wrong password after it
            # is one failure, not another lock
            before = 0 if row.locked_until is not None else row.failed_logins
            failures, locked = policy.after_failure(before, now)
            c.execute(update(USERS).where(where).values(failed_logins=failures,
                                                        locked_until=locked))
            return None
        values: dict[str, Any] = {"failed_logins": 0, "locked_until": None,
                                  "last_login_at": now}
        if passwords.needs_rehash(row.password_hash):
            values["password_hash"] = passwords.hash_password(password)
        c.execute(update(USERS).where(where).values(**values))
        return _principal(row)


def ensure_first_user(engine: Engine, username: str, roles: list[str],
                      now: datetime) -> str | None:
    """When the store has no user at all, add ``username`` with ``roles`` and a
    generated password, and return that password (to show once); else ``None``."""
    if user_count(engine) > 0:
        return None
    password = passwords.generate()
    add_user(engine, username, roles, password, now)
    return password


def issue_token(engine: Engine, username: str, label: str, now: datetime) -> str:
    """A new API token for ``username`` (shown once; the store keeps its hash)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as c:
        _existing(c, username)
        c.execute(insert(API_TOKENS).values(token_hash=token_hash(token), username=username,
                                            label=label, created_at=now))
    return token


def revoke_tokens(engine: Engine, username: str, now: datetime) -> int:
    """Revoke every API token of ``username``; how many were live."""
    with engine.begin() as c:
        _existing(c, username)
        res = c.execute(update(API_TOKENS).where(
            API_TOKENS.c.username == username, API_TOKENS.c.revoked_at.is_(None)
        ).values(revoked_at=now))
        return res.rowcount or 0


def principal_for_token(engine: Engine, token: str) -> Principal | None:
    """The principal of a live API token of an enabled user, else ``None``."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    q = (select(USERS.c.username, USERS.c.display_name, USERS.c.roles, USERS.c.window_id)
         .join(API_TOKENS, API_TOKENS.c.username == USERS.c.username)
         .where(API_TOKENS.c.token_hash == token_hash(token),
                API_TOKENS.c.revoked_at.is_(None), USERS.c.disabled.is_(False)))
    with engine.connect() as c:
        row = c.execute(q).first()
    return None if row is None else _principal(row, source="token")
