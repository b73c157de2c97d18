"""The counter app as a process (`python -m onewindow_cli counter`) over the worked
example's read model in SQLite, no broker: for tests of what the running server does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.integration.counter_oidc_support import ID_KEY, load_example
from tests.integration.server_support import clean_env, serving


@contextmanager
def counter_process(tmp: Path, **settings: str) -> Iterator[tuple[str, str]]:
    """(base URL, database URL) of a running counter; ``settings``: more ONEWINDOW_*
    variables (``LOOKUP_PER_CLIENT_PER_MINUTE="3"``). None of the caller's own."""
    db_url = f"sqlite:///{tmp / 'model.db'}"
    load_example(db_url)
    env = clean_env(DATABASE_URL=db_url, ID_HASH_KEY=ID_KEY, DATA_DIR=str(tmp / "data"),
                    **settings)
    with serving("counter", env, tmp / "counter.log") as (base, _proc):
        yield base, db_url
