"""What a service-centre supervisor watches, read from the read model at scrape time.

    onewindow_cases_open{status}               open cases (closed_at is null) by case status
    onewindow_cases_overdue                    open, not paused, past due_at
    onewindow_cases_due_soon                   open, not paused, due today or by the next
                                               working day, not yet overdue
    onewindow_materials_avoidable_today        MaterialSubmitted today (Asia/Shanghai) that
                                               repeat a document already on file
    onewindow_read_model_up                    1 when the last query succeeded

The same rules as ``onewindow.domain.deadline.sla_status`` (OVERDUE, DUE_SOON, PAUSED),
in SQL over the indexed ``cases(status, due_at)`` so a scrape stays cheap; results are
cached for ``min_interval`` seconds, so several Prometheus servers scraping do not
multiply the queries. A process that has an engine and the calendar registers it::

    registry.register(SupervisorCollector(engine, calendar))
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from datetime import time as dtime
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, and_, func, select

from onewindow.domain.deadline import SHANGHAI, local_date, next_working_day
from onewindow.read_model.tables import Case, Material

__all__ = ["SupervisorCollector", "supervisor_snapshot"]

log = logging.getLogger(__name__)


def supervisor_snapshot(conn: Any, now: datetime, calendar: Any) -> dict[str, Any]:
    """The supervisor's figures at ``now`` from one read-model connection."""
    open_ = Case.closed_at.is_(None)
    by_status = {s: n for s, n in conn.execute(
        select(Case.status, func.count()).where(open_).group_by(Case.status))}
    running = and_(open_, Case.accepted_at.is_not(None), Case.paused_since.is_(None),
                   Case.due_at.is_not(None))
    overdue = conn.execute(
        select(func.count()).select_from(Case).where(running, Case.due_at < now)).scalar_one()
    today = local_date(now)
    horizon = max(today, next_working_day(today, calendar))
    due_soon = conn.execute(
        select(func.count()).select_from(Case).where(
            running, Case.due_at >= now, Case.due_date <= horizon)).scalar_one()
    midnight = datetime.combine(today, dtime(0), SHANGHAI).astimezone(UTC)
    avoidable = conn.execute(
        select(func.count()).select_from(Material).where(
            Material.avoidable.is_(True), Material.kind == "MaterialSubmitted",
            Material.occurred_at >= midnight)).scalar_one()
    return {"open": by_status, "overdue": int(overdue), "due_soon": int(due_soon),
            "avoidable_today": int(avoidable)}


class SupervisorCollector(Collector):
    def __init__(self, engine: Engine, calendar: Any, *, min_interval: float = 15.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.engine = engine
        self.calendar = calendar
        self.min_interval = min_interval
        self.clock = clock
        self._lock = threading.Lock()
        self._at = float("-inf")
        self._snap: dict[str, Any] | None = None
        self._up = 0

    def _refresh(self) -> None:
        with self._lock:
            if time.monotonic() - self._at < self.min_interval:
                return
            self._at = time.monotonic()
            try:
                with self.engine.connect() as conn:
                    self._snap = supervisor_snapshot(conn, self.clock(), self.calendar)
                self._up = 1
            except Exception as exc:  # noqa: BLE001 - a scrape must not fail on the DB
                log.warning("supervisor gauges not refreshed: %s", type(exc).__name__)
                self._up = 0

    def describe(self) -> Iterator[Any]:
        return iter(())  # no query at registration time

    def collect(self) -> Iterator[Any]:
        self._refresh()
        yield GaugeMetricFamily("onewindow_read_model_up",
                                "1 when the supervisor gauges' last read-model query "
                                "succeeded", value=self._up)
        snap = self._snap
        if snap is None:
            return
        g = GaugeMetricFamily("onewindow_cases_open", "Open cases (not closed) by case status",
                              labels=["status"])
        for status, n in sorted(snap["open"].items()):
            g.add_metric([status], n)
        yield g
        yield GaugeMetricFamily("onewindow_cases_overdue",
                                "Open, not paused cases past their statutory deadline",
                                value=snap["overdue"])
        yield GaugeMetricFamily("onewindow_cases_due_soon",
                                "Open, not paused cases due today or by the next working day",
                                value=snap["due_soon"])
        yield GaugeMetricFamily("onewindow_materials_avoidable_today",
                                "Materials submitted today (Asia/Shanghai) that repeat a "
                                "document already on file", value=snap["avoidable_today"])
