"""Two SQL expressions the read model's reports need that SQLite and PostgreSQL spell
differently, as SQLAlchemy constructs compiled per dialect (``sqlalchemy.ext.compiler``):

* :class:`local_day` ``(instant)``: the Asia/Shanghai calendar date of a stored
  :class:`~onewindow.read_model.types.UTCDateTime`, as a ``datetime.date``. PostgreSQL:
  ``(instant AT TIME ZONE 'Asia/Shanghai')::date``. SQLite (instants are UTC text):
  ``date(instant, '+8 hours')``, exact because China has kept UTC+8 without daylight
  saving since 1991 and the model holds nothing before 2000 (domain.md section 2).
* :class:`first_day_ending_after` ``(instant)``: the first Asia/Shanghai day whose last
  millisecond is after the instant: the local date of ``instant + 1 ms`` (a deadline of
  23:59:59.999 is overdue from the next day on, one of 13:00 from its own day).
* :class:`seconds_between` ``(a, b)``: ``b - a`` in seconds, a float (``julianday`` on
  SQLite, millisecond precision; ``EXTRACT(EPOCH ...)`` on PostgreSQL).

Any other dialect raises ``sqlalchemy.exc.CompileError`` when the query is compiled.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Date, Float
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

__all__ = ["first_day_ending_after", "local_day", "seconds_between"]


class local_day(FunctionElement[Any]):  # noqa: N801 - reads as the SQL function it is
    """``local_day(instant)``: the instant's date in Asia/Shanghai (``datetime.date``)."""

    type = Date()
    inherit_cache = True
    name = "local_day"


class first_day_ending_after(FunctionElement[Any]):  # noqa: N801
    """``first_day_ending_after(instant)``: the local date of ``instant + 1 ms``."""

    type = Date()
    inherit_cache = True
    name = "first_day_ending_after"


class seconds_between(FunctionElement[Any]):  # noqa: N801
    """``seconds_between(a, b)``: ``b - a`` in seconds (float; negative when b < a)."""

    type = Float()
    inherit_cache = True
    name = "seconds_between"


def _args(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> list[str]:
    return [compiler.process(c, **kw) for c in element.clauses]


@compiles(local_day)
@compiles(first_day_ending_after)
@compiles(seconds_between)
def _unsupported(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
    raise CompileError(f"{element.name} is defined for SQLite and PostgreSQL only, "
                       f"not {compiler.dialect.name}")


@compiles(local_day, "sqlite")
def _local_day_sqlite(element: local_day, compiler: SQLCompiler, **kw: Any) -> str:
    (instant,) = _args(element, compiler, **kw)
    return f"date({instant}, '+8 hours')"


@compiles(local_day, "postgresql")
def _local_day_postgresql(element: local_day, compiler: SQLCompiler, **kw: Any) -> str:
    (instant,) = _args(element, compiler, **kw)
    return f"CAST(({instant} AT TIME ZONE 'Asia/Shanghai') AS DATE)"


@compiles(first_day_ending_after, "sqlite")
def _day_after_sqlite(element: first_day_ending_after, compiler: SQLCompiler,
                      **kw: Any) -> str:
    (instant,) = _args(element, compiler, **kw)
    return f"date({instant}, '+8 hours', '+0.001 seconds')"


@compiles(first_day_ending_after, "postgresql")
def _day_after_postgresql(element: first_day_ending_after, compiler: SQLCompiler,
                          **kw: Any) -> str:
    (instant,) = _args(element, compiler, **kw)
    return (f"CAST((({instant}) + INTERVAL '1 millisecond') AT TIME ZONE 'Asia/Shanghai' "
            "AS DATE)")


@compiles(seconds_between, "sqlite")
def _seconds_sqlite(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = _args(element, compiler, **kw)
    return f"((julianday({b}) - julianday({a})) * 86400.0)"


@compiles(seconds_between, "postgresql")
def _seconds_postgresql(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = _args(element, compiler, **kw)
    return f"CAST(EXTRACT(EPOCH FROM ({b} - {a})) AS DOUBLE PRECISION)"
