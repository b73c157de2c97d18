"""Epoch milliseconds <-> datetimes: the one conversion every part of onewindow uses.

Kafka record timestamps, Avro ``timestamp-millis`` values and the fold state of a case
(domain.md section 3) count time as whole milliseconds since the Unix epoch
(1970-01-01T00:00:00Z); the rules and the read model use aware UTC datetimes. Both
directions are exact integer arithmetic (no float seconds), so
``from_ms(to_ms(from_ms(ms))) == from_ms(ms)`` for every ``ms``.

Standard library only, like the rest of :mod:`onewindow.domain`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import overload

__all__ = ["EPOCH", "from_ms", "to_ms"]

#: 1970-01-01T00:00:00Z, aware.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


@overload
def to_ms(instant: datetime) -> int: ...
@overload
def to_ms(instant: None) -> None: ...
def to_ms(instant: datetime | None) -> int | None:
    """Milliseconds since the Unix epoch (an ``int``) of an aware datetime.

    Sub-millisecond parts are floored (towards the past, also before 1970); the offset
    of ``instant`` does not matter, only the instant. ``None`` (a record without a
    timestamp) gives ``None``.

    Raises ``TypeError`` for a naive datetime: it names no instant.
    """
    if instant is None:
        return None
    return (instant - EPOCH) // _MS


@overload
def from_ms(ms: int) -> datetime: ...
@overload
def from_ms(ms: None) -> None: ...
def from_ms(ms: int | None) -> datetime | None:
    """The aware UTC datetime of ``ms`` milliseconds since the Unix epoch (exact).

    ``None`` (a record without a timestamp) gives ``None``. Raises ``OverflowError``
    outside years 1 to 9999.
    """
    if ms is None:
        return None
    return EPOCH + timedelta(milliseconds=ms)
