"""The records every stream processor takes and gives, free of Faust and Kafka clients.

The Faust shells (`stream_apps.app`, `stream_apps.materials_app`) turn a batch into
`InRecord`s (`stream_apps.faust_context.records`), a processor (`CaseProcessor`,
`MaterialRouter`, `MaterialIndexer`) returns `OutRecord`s, and `OutputProducer` sends
them; the tests and benchmarks build both directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_OUTPUT_BYTES", "InRecord", "OutRecord"]

#: Largest output record, key and value: the output producer's ``message.max.bytes``
#: (`stream_apps.output`: librdkafka's default, which also counts ~40 bytes of framing),
#: under the broker's 1 MiB. The processors keep their outputs well under it
#: (`stream_apps.case_processor`).
MAX_OUTPUT_BYTES = 1_000_000


@dataclass(frozen=True, slots=True)
class InRecord:
    """One consumed Kafka record, as the transport gave it.

    ``timestamp_ms`` is the record timestamp in milliseconds since the Unix epoch, or
    ``None`` when the record has none (`onewindow.domain.clock.from_ms` turns it into a
    datetime).
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None
    #: the transport's own handle on the record (the Faust event), for the adapter
    ref: Any = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class OutRecord:
    """One record to produce: topic, key bytes (``None``: no key) and value bytes."""

    topic: str
    key: bytes | None
    value: bytes
    #: the input record it was made for, when its failure must dead-letter that record
    #: (``OUTPUT_FAILED``: `stream_apps.output.OutputProducer.send_batch`)
    source: InRecord | None = field(default=None, compare=False)
    #: the partition to write, when not the key's (a calendar check names its partition:
    #: `stream_apps.calendar_checks.check_records`)
    partition: int | None = None
