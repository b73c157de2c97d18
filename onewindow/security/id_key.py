"""The secret of the keyed hash of ID numbers: which key a process uses, and where `up` keeps one.

:func:`resolve_id_hash_key` is the one place that decides, for every process that hashes
(the stream apps, the sink, the rebuild, the counter, the benchmarks):

1. ``ONEWINDOW_ID_HASH_KEY`` (``Settings.id_hash_key``), else
2. the file ``ONEWINDOW_ID_HASH_KEY_FILE`` names (``Settings.id_hash_key_file``; one
   trailing newline is dropped), else
3. the built-in development key :data:`DEV_KEY`, only when the operator opted in
   (``--insecure-dev-key`` or ``ONEWINDOW_INSECURE_DEV_KEY=true``; one warning line), else
4. :class:`IdHashKeyError`: one line naming the ways out.

A configured key must have at least :data:`MIN_KEY_LENGTH` characters; the development key
written out as ``ONEWINDOW_ID_HASH_KEY`` counts as the development key (it needs the
opt-in too). There is no silent default.

``onewindow up`` keeps a generated key in ``<data dir>/secrets/id-hash.key``
(:func:`stack_key_file`, :func:`ensure_key_file`: 32 random bytes as 64 hex characters,
directory 0700, file 0600, created atomically once and never overwritten) and hands its
children the file's path, not the key.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path

from pydantic import SecretStr

from onewindow.config import Settings
from onewindow.errors import ConfigError

__all__ = ["DEV_KEY", "MIN_KEY_LENGTH", "IdHashKeyError", "ensure_key_file", "new_key",
           "read_key_file", "resolve_id_hash_key", "stack_key_file", "with_new_key"]

log = logging.getLogger(__name__)

#: The built-in development key: used only with ``--insecure-dev-key``.
DEV_KEY = "onewindow-local-development-key"
#: The fewest characters a configured key may have (a generated one has 64).
MIN_KEY_LENGTH = 32

_WAYS_OUT = ("set ONEWINDOW_ID_HASH_KEY or ONEWINDOW_ID_HASH_KEY_FILE (a secret of at least "
             f"{MIN_KEY_LENGTH} characters, e.g. `openssl rand -hex 32`), run under "
             "`onewindow up` (it keeps one in <data dir>/secrets/id-hash.key), or pass "
             "--insecure-dev-key for a throwaway setup")


class IdHashKeyError(ConfigError):
    """No usable secret for the keyed hash of ID numbers (the message is one line)."""


def new_key() -> str:
    """A fresh key: 32 random bytes as 64 hex characters."""
    return secrets.token_hex(32)


def _checked(key: str, source: str, settings: Settings, warn: bool = True) -> str:
    if key == DEV_KEY:
        return _dev_key(settings, f"{source} is the built-in development key", warn)
    if len(key) < MIN_KEY_LENGTH:
        what = "empty" if not key else f"only {len(key)} characters long"
        raise IdHashKeyError(f"the ID hash key in {source} is {what}: it needs at least "
                             f"{MIN_KEY_LENGTH} (e.g. `openssl rand -hex 32`)")
    return key


def _dev_key(settings: Settings, reason: str, warn: bool = True) -> str:
    if not settings.insecure_dev_key:
        raise IdHashKeyError(f"{reason}: {_WAYS_OUT}")
    if warn:
        log.warning("ID numbers are hashed with the built-in development key "
                    "(--insecure-dev-key): for a throwaway setup only")
    return DEV_KEY


def read_key_file(path: Path, settings: Settings,
                  source: str = "ONEWINDOW_ID_HASH_KEY_FILE", *, warn: bool = True) -> str:
    """The key in ``path`` (one trailing newline dropped), checked like any key."""
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise IdHashKeyError(f"cannot read the ID hash key file {path} ({source}): "
                             f"{reason}") from exc
    return _checked(text.removesuffix("\n").removesuffix("\r"), f"{source} {path}", settings,
                    warn)


def resolve_id_hash_key(settings: Settings, *, warn: bool = True) -> str:
    """The key this process hashes ID numbers with (the order in the module docstring);
    raises :class:`IdHashKeyError` when there is none or it is unusable. ``warn=False``:
    no warning line for the development key (a command checking the key early, before
    the app that resolves it again)."""
    if settings.id_hash_key is not None:
        return _checked(settings.id_hash_key.get_secret_value(), "ONEWINDOW_ID_HASH_KEY",
                        settings, warn)
    if settings.id_hash_key_file is not None:
        return read_key_file(settings.id_hash_key_file, settings, warn=warn)
    return _dev_key(settings, "no ID hash key", warn)


def with_new_key(settings: Settings) -> Settings:
    """A copy of ``settings`` with a fresh random key of its own (a benchmark's: its
    synthetic data's hashes are thrown away with it)."""
    return settings.model_copy(update={"id_hash_key": SecretStr(new_key()),
                                       "id_hash_key_file": None})


def stack_key_file(settings: Settings) -> Path:
    """Where `onewindow up` keeps its generated key: ``<data dir>/secrets/id-hash.key``."""
    return settings.data_dir / "secrets" / "id-hash.key"


def ensure_key_file(path: Path) -> bool:
    """Create ``path`` holding a new key unless it exists; True when created now.

    The directory is made private (0700); the file is written to a temporary name (0600)
    and linked into place, so nobody reads a half-written key and an existing file, even
    one created meanwhile by another process, is never overwritten."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    if path.exists():
        return False
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(new_key() + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # fails if the key exists: never replaced
        except FileExistsError:
            return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return True
