"""The access log: one row per read of a case, a timeline, a holder's documents, a
material, a search or a lookup (who, when, what, from where, with what result).

Append-only: this module offers ``append``, ``query`` and the retention ``purge``, and
nothing else; the database refuses updates and early deletes by itself (migration
s0001). GB/T 22239-2019 level 3, 8.1.4.3 (security audit: "audit records include the
date and time, user, event type, whether it succeeded ..."; "protect audit records
against unexpected deletion, modification or overwriting"; kept at least six months).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select

from onewindow.domain.access import Principal
from onewindow.domain.protection import scrub
from onewindow.staff.tables import ACCESS_LOG

__all__ = ["CITIZEN", "MIN_RETENTION_DAYS", "Entry", "append", "append_many", "holder_target", "holder_targets", "purge",
           "query"]

MIN_RETENTION_DAYS = 180
#: who a citizen's progress lookup is logged as
CITIZEN = Principal(subject="citizen", name="citizen", roles=frozenset(), source="public")


def holder_target(id_type: str, id_hash: str) -> str:
    """How a holder is named in the log: ``holder:<id type>:<keyed hash>`` (an auditor
    finds every read of one person's documents by hashing the number the same way); a
    search by number across every type is ``holder:ANY:<keyed hash>``."""
    return f"holder:{id_type}:{id_hash}"


def holder_targets(id_type: str, id_hash: str) -> list[str]:
    """Every target under which reads of this holder are logged."""
    return [holder_target(id_type, id_hash), holder_target("ANY", id_hash)]


@dataclass(frozen=True)
class Entry:
    action: str  # e.g. "case.read", "holder.documents", "search", "lookup"
    target: str | None
    result: str  # "ok", "not_found", "limited", "invalid"
    detail: str | None = None


def append(engine: Engine, who: Principal, entry: Entry, client: str, now: datetime) -> None:
    """Append one row: :func:`append_many` of one entry."""
    append_many(engine, who, [entry], client, now)


def append_many(engine: Engine, who: Principal, entries: Sequence[Entry], client: str,
                now: datetime) -> None:
    """Append rows of one request in one transaction, committed before the answer
    leaves. Every text that came from the request (a case id, a user name typed at
    sign-in ...) is scrubbed first: an ID number typed where a case number belongs is kept
    masked, as everywhere past the input topics
    (:func:`onewindow.domain.protection.scrub`)."""
    if not entries:
        return
    common = {"at": now, "subject": scrub(who.subject)[:512], "name": scrub(who.name)[:256],
              "roles": ",".join(sorted(r.value for r in who.roles)), "client": client[:64]}
    rows = [common | {"action": e.action, "result": e.result,
                      "target": None if e.target is None else scrub(e.target[:512]),
                      "detail": None if e.detail is None else scrub(e.detail[:1024])}
            for e in entries]
    with engine.begin() as c:
        c.execute(insert(ACCESS_LOG), rows)


def query(c: Connection, *, since: datetime | None = None, until: datetime | None = None,
          subject: str | None = None, action: str | None = None,
          target: str | list[str] | None = None, limit: int = 100,
          offset: int = 0) -> list[Mapping[str, Any]]:
    """Rows newest first, filtered by time range, who (subject or name), what and target
    (one, or any of a list)."""
    q = select(ACCESS_LOG)
    if since is not None:
        q = q.where(ACCESS_LOG.c.at >= since)
    if until is not None:
        q = q.where(ACCESS_LOG.c.at < until)
    if subject:
        q = q.where((ACCESS_LOG.c.subject == subject) | (ACCESS_LOG.c.name == subject))
    if action:
        q = q.where(ACCESS_LOG.c.action == action)
    if isinstance(target, list):
        q = q.where(ACCESS_LOG.c.target.in_(target))
    elif target:
        q = q.where(ACCESS_LOG.c.target == target)
    q = q.order_by(ACCESS_LOG.c.at.desc(), ACCESS_LOG.c.id.desc()).limit(limit).offset(offset)
    return [r._mapping for r in c.execute(q)]


def purge(engine: Engine, now: datetime, retention_days: int) -> int:
    """Delete rows older than ``retention_days`` (at least :data:`MIN_RETENTION_DAYS`);
    how many went."""
    if retention_days < MIN_RETENTION_DAYS:
        raise ValueError(f"retention_days must be at least {MIN_RETENTION_DAYS}")
    with engine.begin() as c:
        res = c.execute(delete(ACCESS_LOG).where(
            ACCESS_LOG.c.at < now - timedelta(days=retention_days)))
        return res.rowcount or 0
