"""Who may read what in the counter app: staff roles, the permissions they carry, the
signed-in principal, and the lockout rule of the local user store.

The roles are those of interfaces.md ("HTTP API of the counter app"):

* ``clerk``: find and show cases, a holder's documents, print a receipt;
* ``supervisor``: what a clerk does, and the board, reports and dead letters;
* ``auditor``: the access log, and nothing else (separation of duties, GB/T 22239-2019
  level 3, 8.1.4.2 access control: the auditor is not the one audited);
* ``ops``: metrics and health details, and the dead letters they investigate.

A user may hold several roles; a permission is granted when any role carries it.
Standard library only, like the rest of :mod:`onewindow.domain`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

__all__ = [
    "ROLE_PERMISSIONS",
    "LockoutPolicy",
    "Permission",
    "Principal",
    "Role",
    "parse_roles",
]


class Role(StrEnum):
    CLERK = "clerk"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"
    OPS = "ops"


class Permission(StrEnum):
    READ_CASES = "read_cases"  # a case, its card, timeline, receipt; search; the feed
    READ_DOCUMENTS = "read_documents"  # materials on file and a holder's documents
    READ_BOARD = "read_board"  # the window board and supervisor reports
    READ_DEAD_LETTERS = "read_dead_letters"
    READ_ACCESS_LOG = "read_access_log"
    READ_METRICS = "read_metrics"  # /metrics and health details


_CLERK = frozenset({Permission.READ_CASES, Permission.READ_DOCUMENTS})

#: what each role may do (interfaces.md, "HTTP API of the counter app")
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.CLERK: _CLERK,
    Role.SUPERVISOR: _CLERK | {Permission.READ_BOARD, Permission.READ_DEAD_LETTERS},
    Role.AUDITOR: frozenset({Permission.READ_ACCESS_LOG}),
    Role.OPS: frozenset({Permission.READ_METRICS, Permission.READ_DEAD_LETTERS}),
}


def parse_roles(values: Iterable[str]) -> frozenset[Role]:
    """The known roles among ``values`` (case-insensitive, surrounding blanks ignored);
    anything else (an identity provider's own roles such as ``offline_access``) is
    dropped, never an error."""
    known = {r.value: r for r in Role}
    return frozenset(known[v.strip().lower()] for v in values
                     if isinstance(v, str) and v.strip().lower() in known)


@dataclass(frozen=True)
class Principal:
    """A signed-in member of staff.

    ``subject``: the stable identifier (``local:<username>`` for the local user store,
    ``<issuer>#<sub>`` for OpenID Connect); ``name``: what the access log and the screen
    show; ``source``: ``"local"``, ``"token"`` (a local API token) or ``"oidc"``;
    ``window_id``: the counter window the member of staff works at (the local store's
    ``--window``, the identity provider's claim; ``None``: no window, e.g. a supervisor),
    whose cases the home page lists (the contract is silent; docs/supervisor.md).
    """

    subject: str
    name: str
    roles: frozenset[Role]
    source: str = "local"
    window_id: str | None = None
    permissions: frozenset[Permission] = field(init=False)

    def __post_init__(self) -> None:
        perms: set[Permission] = set()
        for r in self.roles:
            perms |= ROLE_PERMISSIONS[r]
        object.__setattr__(self, "permissions", frozenset(perms))

    def may(self, permission: Permission) -> bool:
        return permission in self.permissions


@dataclass(frozen=True)
class LockoutPolicy:
    """Lock an account for ``lock_for`` after ``max_failures`` wrong passwords in a row
    (GB/T 22239-2019 level 3, 8.1.4.1 b: "login failure handling ... limit the number
    of illegal login attempts"). A right password resets the count, unless locked."""

    max_failures: int = 5
    lock_for: timedelta = timedelta(minutes=15)

    def after_failure(self, failures: int, now: datetime) -> tuple[int, datetime | None]:
        """The failure count after one more wrong password, and the instant the
        account stays locked until (``None``: not locked)."""
        failures += 1
        return failures, (now + self.lock_for if failures >= self.max_failures else None)

    @staticmethod
    def is_locked(locked_until: datetime | None, now: datetime) -> bool:
        return locked_until is not None and now < locked_until
