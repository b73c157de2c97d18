"""Server-side sessions of signed-in staff, and the short-lived state of an OpenID
Connect sign-in under way.

The browser holds a random token (256 bits) in a cookie; the store keeps its SHA-256,
the principal, a CSRF token (synchronizer-token pattern, OWASP CSRF prevention cheat
sheet) and two clocks: the session ends after ``idle`` without a request and after
``absolute`` in any case (GB/T 22239-2019 level 3, 8.1.4.1 b: "end the session after a
timeout"). Signing out, disabling the user or resetting the password deletes it.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from onewindow.domain.access import Principal, parse_roles
from onewindow.staff.tables import LOGIN_STATES, SESSIONS
from onewindow.staff.users import token_hash

__all__ = ["SessionPolicy", "close", "open_session", "purge_expired", "put_login_state",
           "resolve", "take_login_state"]


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)
    #: last_seen_at is written at most this often (not on every request)
    touch_every: timedelta = timedelta(minutes=1)


DEFAULT_POLICY = SessionPolicy()


def open_session(engine: Engine, principal: Principal, now: datetime,
                 policy: SessionPolicy = DEFAULT_POLICY) -> tuple[str, str]:
    """A new session for ``principal``: (cookie token, CSRF token)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    with engine.begin() as c:
        c.execute(insert(SESSIONS).values(
            session_hash=token_hash(token), subject=principal.subject, name=principal.name,
            roles=",".join(sorted(r.value for r in principal.roles)),
            source=principal.source, csrf_token=csrf, created_at=now, last_seen_at=now,
            expires_at=now + policy.absolute, window_id=principal.window_id))
    return token, csrf


def resolve(engine: Engine, token: str, now: datetime,
            policy: SessionPolicy = DEFAULT_POLICY, *,
            touch: bool = True) -> tuple[Principal, str] | None:
    """The principal and CSRF token of a live session, or ``None`` (unknown, idle too
    long or past its end; such a session is deleted). ``touch=False``: a check that is
    no activity of the user (an open change feed), so the idle clock keeps running."""
    h = token_hash(token)
    with engine.connect() as c:
        row = c.execute(select(SESSIONS).where(SESSIONS.c.session_hash == h)).first()
    if row is None:
        return None
    if now >= row.expires_at or now - row.last_seen_at >= policy.idle:
        close(engine, token)
        return None
    if touch and now - row.last_seen_at >= policy.touch_every:
        with engine.begin() as c:
            c.execute(update(SESSIONS).where(SESSIONS.c.session_hash == h)
                      .values(last_seen_at=now))
    principal = Principal(subject=row.subject, name=row.name,
                          roles=parse_roles(row.roles.split(",")), source=row.source,
                          window_id=row.window_id)
    return principal, row.csrf_token


def close(engine: Engine, token: str) -> None:
    with engine.begin() as c:
        c.execute(delete(SESSIONS).where(SESSIONS.c.session_hash == token_hash(token)))


def purge_expired(engine: Engine, now: datetime,
                  policy: SessionPolicy = DEFAULT_POLICY) -> int:
    """Delete ended sessions and login states; how many sessions went."""
    with engine.begin() as c:
        n = c.execute(delete(SESSIONS).where(
            (SESSIONS.c.expires_at <= now) | (SESSIONS.c.last_seen_at <= now - policy.idle)
        )).rowcount or 0
        c.execute(delete(LOGIN_STATES).where(LOGIN_STATES.c.expires_at <= now))
    return n


def put_login_state(engine: Engine, state: str, data: dict[str, Any], now: datetime,
                    ttl: timedelta = timedelta(minutes=10)) -> None:
    """Keep what an OpenID Connect sign-in needs at its callback, under ``state``."""
    with engine.begin() as c:
        c.execute(insert(LOGIN_STATES).values(state_hash=token_hash(state),
                                              data=json.dumps(data), expires_at=now + ttl))


def take_login_state(engine: Engine, state: str, now: datetime) -> dict[str, Any] | None:
    """The data kept under ``state``, once (it is deleted), unless expired."""
    h = token_hash(state)
    with engine.begin() as c:
        row = c.execute(select(LOGIN_STATES).where(LOGIN_STATES.c.state_hash == h)).first()
        c.execute(delete(LOGIN_STATES).where(LOGIN_STATES.c.state_hash == h))
    if row is None or now >= row.expires_at:
        return None
    return json.loads(row.data)  # type: ignore[no-any-return]
