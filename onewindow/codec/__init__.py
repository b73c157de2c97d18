"""The one codec of onewindow: Avro single-object encoding and the JSON form of events.

Nothing happens at import time; the schemas under ``schemas/avro/`` are loaded on the
first call (``get_codec()``, cached), or explicitly with ``Codec.load(path)``.

    from onewindow import codec
    data = codec.encode(event)            # event: dict with "type"
    event = codec.decode(data)            # DecodeError("UNDECODABLE" | "UNKNOWN_SCHEMA")
    obj = codec.to_json(event)            # JSON-ready dict, timestamps +08:00
    event = codec.from_json(obj)          # DecodeError("INVALID_FIELD", "<path>: ...")
"""

from __future__ import annotations

from typing import Any

from onewindow.codec.compat import check_backward_compatible
from onewindow.codec.jsonform import SHANGHAI, format_timestamp, parse_timestamp
from onewindow.codec.registry import (
    EVENTS_NAMESPACE,
    HEADER_LEN,
    MAGIC,
    OUTPUT_NAMESPACE,
    SCHEMA_DIR_ENV,
    Codec,
    EncodeError,
    SchemaRegistryError,
    SchemaVersion,
    crc64_fingerprint,
    default_schema_dir,
    get_codec,
)

__all__ = [
    "EVENTS_NAMESPACE",
    "HEADER_LEN",
    "MAGIC",
    "OUTPUT_NAMESPACE",
    "SCHEMA_DIR_ENV",
    "SHANGHAI",
    "Codec",
    "EncodeError",
    "SchemaRegistryError",
    "SchemaVersion",
    "check_backward_compatible",
    "crc64_fingerprint",
    "decode",
    "decode_record",
    "default_schema_dir",
    "encode",
    "encode_record",
    "format_timestamp",
    "from_json",
    "get_codec",
    "loads_json_line",
    "parse_timestamp",
    "to_json",
]


def encode(event: dict[str, Any]) -> bytes:
    """An input event to Avro single-object encoding (latest version of its schema)."""
    return get_codec().encode(event)


def decode(data: bytes) -> dict[str, Any]:
    """Avro single-object bytes to an input event dict (with ``type``)."""
    return get_codec().decode(data)


def encode_record(name: str, record: dict[str, Any]) -> bytes:
    """An output record (CaseState, CaseActivity, MaterialLink, DeadLetter) by name."""
    return get_codec().encode_record(name, record)


def decode_record(data: bytes, name: str | None = None) -> dict[str, Any]:
    """Any record of the registry; ``type`` is its record name."""
    return get_codec().decode_record(data, name)


def to_json(event: dict[str, Any]) -> dict[str, Any]:
    """The JSON form of an event (interfaces.md)."""
    return get_codec().to_json(event)


def from_json(obj: Any) -> dict[str, Any]:
    """An event from its JSON form."""
    return get_codec().from_json(obj)


def loads_json_line(line: str | bytes) -> dict[str, Any]:
    """One JSON-lines line to an event; bad JSON is DecodeError("UNDECODABLE")."""
    return get_codec().loads_json_line(line)
