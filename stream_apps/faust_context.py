"""Faust's "current event", set explicitly before every table access.

Faust's RocksDB store and its changelog pick the partition of a table read or write from
the current event; inside a `take_events` batch that is the batch's last event, so each
read and write of a batch must name its own event first.
"""

from __future__ import annotations

import weakref
from typing import Any

from faust.streams import _current_event  # noqa: PLC2701 - no public setter exists


def use_event(event: Any) -> None:
    """Make `event` (a Faust event of the stream being processed) the current event."""
    _current_event.set(weakref.ref(event))
