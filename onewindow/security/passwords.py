"""Password hashing for the local user store: argon2id (RFC 9106) through argon2-cffi,
with its default parameters (the RFC's second recommended option: 64 MiB, 3 passes, 4
lanes), re-hashed on sign-in when the parameters move on.

A password must be at least ``MIN_LENGTH`` characters and use three of the four kinds
(lower case, upper case, digits, other), GB/T 22239-2019 level 3, 8.1.4.1 a ("identity
identification ... passwords with complexity requirements"). Generated passwords
(``generate``) have 128 bits of entropy and always pass.
"""

from __future__ import annotations

import secrets
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from onewindow.errors import OneWindowError

__all__ = ["MAX_LENGTH", "MIN_LENGTH", "WeakPassword", "dummy_verify", "generate", "hash_password",
           "needs_rehash", "validate", "verify"]

MIN_LENGTH = 12
#: the sign-in form takes at most this many characters
MAX_LENGTH = 256
_hasher = PasswordHasher()
#: verified against when the user does not exist, so both answers take as long
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))


class WeakPassword(OneWindowError):
    """The password does not meet the policy; the message says which rule."""


def validate(password: str) -> None:
    """Raise :class:`WeakPassword` unless ``password`` meets the policy above."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"a password has at most {MAX_LENGTH} characters")
    kinds = sum(any(test(c) for c in password) for test in (
        str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum()))
    if kinds < 3:
        raise WeakPassword("a password needs three of: lower case, upper case, digits, "
                           "other characters")


def generate() -> str:
    """A random password: 22 URL-safe characters (128 bits) plus a digit, an upper and a
    lower case letter and a symbol, so it passes :func:`validate` whatever was drawn."""
    # the symbol inside, a letter last: printed at the end of a line, a password ending
    # in "." or "~" was copied without it (found by a newcomer)
    extra = [secrets.choice("-_.~"), secrets.choice(string.digits),
             secrets.choice(string.ascii_uppercase), secrets.choice(string.ascii_lowercase)]
    return secrets.token_urlsafe(16) + "".join(extra)


def hash_password(password: str) -> str:
    """The argon2id PHC string of ``password`` (salted)."""
    return _hasher.hash(password)


def verify(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``; a malformed hash is no match."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def dummy_verify(password: str) -> None:
    """Spend the time of one verification (for an unknown user name)."""
    verify(_DUMMY, password)


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
