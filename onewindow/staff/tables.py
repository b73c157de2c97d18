"""Tables of the staff store (SQLAlchemy Core; created by ``counter.staff_migrations``,
which a unit test compares with these definitions).

Nothing here holds a secret in the clear: passwords are argon2id hashes
(:mod:`onewindow.security.passwords`), session and API tokens are kept as the SHA-256 of
the random token the client holds (256 bits of entropy, so a plain hash suffices), the
access log names its targets by case or material id, or by a holder's ID type, masked
form and keyed hash, never a plaintext ID number.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)

from onewindow.read_model.tables import NAMING
from onewindow.read_model.types import UTCDateTime

__all__ = ["ACCESS_LOG", "API_TOKENS", "LOGIN_STATES", "SESSIONS", "USERS", "metadata"]

#: the read model's naming convention, so both histories name constraints alike
metadata = MetaData(naming_convention=NAMING)

#: local user store (the embedded default; a city's users come from OpenID Connect)
USERS = Table(
    "staff_users", metadata,
    Column("username", String(64), primary_key=True),
    Column("display_name", Text, nullable=False),
    Column("roles", Text, nullable=False),  # comma-separated onewindow.domain.access.Role
    Column("password_hash", Text, nullable=False),  # argon2id, PHC string
    Column("disabled", Boolean, nullable=False, server_default=false()),
    Column("failed_logins", Integer, nullable=False, server_default="0"),
    Column("locked_until", UTCDateTime, nullable=True),
    Column("password_changed_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_login_at", UTCDateTime, nullable=True),
    #: the counter window the user works at (the home page's cases; migration s0002)
    Column("window_id", String(64), nullable=True),
)

#: bearer tokens for API clients of the local store (Prometheus, scripts)
API_TOKENS = Table(
    "staff_api_tokens", metadata,
    Column("token_hash", String(64), primary_key=True),  # sha256 hex of the token
    Column("username", String(64), ForeignKey("staff_users.username", ondelete="CASCADE"),
           nullable=False),
    Column("label", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    Index(None, "username"),
)

#: browser sessions (local or OpenID Connect sign-in): server-side, so signing out,
#: disabling a user or an idle timeout ends them at once
SESSIONS = Table(
    "staff_sessions", metadata,
    Column("session_hash", String(64), primary_key=True),  # sha256 hex of the cookie
    Column("subject", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("roles", Text, nullable=False),
    Column("source", String(16), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("window_id", String(64), nullable=True),  # the principal's, at sign-in
    Index(None, "expires_at"),
    Index(None, "subject"),
)

#: an OpenID Connect sign-in under way: state, nonce and PKCE verifier, for minutes
LOGIN_STATES = Table(
    "staff_login_states", metadata,
    Column("state_hash", String(64), primary_key=True),
    Column("data", Text, nullable=False),  # JSON
    Column("expires_at", UTCDateTime, nullable=False),
)

#: append-only: the app inserts and reads; database triggers refuse UPDATE, and DELETE
#: of a row younger than the retention minimum (migration 0001 of the staff store)
ACCESS_LOG = Table(
    "access_log", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("subject", Text, nullable=False),  # who: local:<user>, <issuer>#<sub>, citizen
    Column("name", Text, nullable=False),
    Column("roles", Text, nullable=False),
    Column("action", String(64), nullable=False),  # what kind of read, e.g. case.read
    Column("target", Text, nullable=True),  # what: a case id, a material id, a holder
    Column("client", String(64), nullable=False),  # from where: the client address
    Column("result", String(32), nullable=False),  # ok, not_found, denied, limited ...
    Column("detail", Text, nullable=True),
    Index(None, "at"),
    Index(None, "subject", "at"),
    Index(None, "action", "at"),
    Index(None, "target", "at"),
)
