"""What every producer of input records does before a record leaves it, in one place: the
producer SDK (``producers.publisher``) and the HTTP ingestion gateway (``gateway``) both
publish department events and must agree on how.

* :data:`INPUT_PRODUCER_CONFIG`: the librdkafka settings of a producer of input records:
  idempotent, ``acks=all``, and the Java client's partitioner (interfaces.md, Kafka:
  ``murmur2_random``, so :func:`onewindow.topics.partition_for` and the stream worker's
  ``WRONG_PARTITION`` check agree with where the record lands).
* :func:`prepare_record`: the source-checkable rules of domain.md section 2
  (:func:`onewindow.domain.validation.validate`), then the Avro encoding, then the
  record's own size (``TOO_LARGE``, 256 KiB), giving the key and value to send or the
  :class:`~onewindow.domain.validation.Rejection` the stream worker would give.

The stream worker enforces every rule again (and the ones a producer cannot check:
``EVENT_ID_CONFLICT`` across time, ``WRONG_PARTITION``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from onewindow.codec import Codec, EncodeError
from onewindow.domain.validation import (
    INVALID_FIELD,
    Rejection,
    check_record_size,
    validate,
)
from onewindow.topics import record_key

__all__ = ["INPUT_PRODUCER_CONFIG", "InputRecord", "prepare_record"]

#: librdkafka settings of every producer of input records (add ``bootstrap.servers`` and
#: the sign-in: ``onewindow.security.kafka_auth.producer_config``). ``linger.ms`` and lz4
#: batch the records of a burst; the rest is the contract.
INPUT_PRODUCER_CONFIG: Mapping[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 5,
    "compression.type": "lz4",
    # the Java client's rule (interfaces.md, Kafka): onewindow.topics.partition_for
    "partitioner": "murmur2_random",
}


@dataclass(frozen=True, slots=True)
class InputRecord:
    """An event ready to send: ``key`` (``case_id``, UTF-8) and ``value`` (Avro
    single-object encoding), together at most 256 KiB."""

    key: bytes
    value: bytes

    def __reduce__(self) -> tuple[type[InputRecord], tuple[bytes, bytes]]:
        # pickled as its two fields: the default of a frozen dataclass with slots looks
        # its fields up on every pickling (the gateway's checking processes send
        # thousands a second)
        return InputRecord, (self.key, self.value)


def prepare_record(event: Mapping[str, Any], *, owner: str | None,
                   departments: Collection[str], counters: Collection[str] | None,
                   now: datetime, codec: Codec,
                   uscc_exceptions: Collection[str] = frozenset()) -> InputRecord | Rejection:
    """The record of a decoded event (``dict`` with ``type``, as ``codec.from_json``
    gives), or why the stream worker would dead-letter it.

    ``owner``: the department owning the topic it goes to (``DEPARTMENT_MISMATCH`` when
    the event names another; ``None`` skips that rule). ``departments``: the registered
    codes; ``counters``: the codes of role ``counter`` (``UNAUTHORISED``; ``None`` skips
    it); ``now``: the clock ``FUTURE_TIMESTAMP`` compares with (timezone-aware). An event
    the schema cannot encode is ``INVALID_FIELD`` (the codec's message names the field).
    ``uscc_exceptions``: the operator's list of known-valid USCCs failing their check
    character (`onewindow.uscc_exceptions`; the worker accepts them, so must a producer).
    """
    rejection = validate(event, topic_department=owner, departments=departments,
                         counters=counters, now=now, uscc_exceptions=uscc_exceptions)
    if rejection is not None:
        return rejection
    key = record_key(str(event["case_id"]))
    try:
        value = codec.encode(dict(event))
    except EncodeError as exc:
        return Rejection(INVALID_FIELD, str(exc))
    too_large = check_record_size(len(key) + len(value))
    return too_large if too_large is not None else InputRecord(key, value)
