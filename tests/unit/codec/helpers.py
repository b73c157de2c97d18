"""Shared helpers of the codec tests: paths, the worked example, schema-driven data."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from tests.examples import RESTAURANT_EVENTS

REPO_ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = RESTAURANT_EVENTS
SCHEMA_DIR = REPO_ROOT / "schemas" / "avro"

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def example_lines() -> list[str]:
    return [line for line in EXAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]


def example_objects() -> list[dict[str, Any]]:
    return [json.loads(line) for line in example_lines()]


# ---- hypothesis strategies driven by a fastavro-parsed schema -----------------------------

_text = st.text(max_size=12)
# Millisecond precision, years 1900..2200: what the wire carries.
timestamps = st.integers(
    min_value=int((datetime(1900, 1, 1, tzinfo=UTC) - EPOCH).total_seconds() * 1000),
    max_value=int((datetime(2200, 1, 1, tzinfo=UTC) - EPOCH).total_seconds() * 1000),
).map(lambda ms: EPOCH + timedelta(milliseconds=ms))
dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31))


def strategy_for(schema: Any, named: dict[str, Any]) -> st.SearchStrategy[Any]:
    if isinstance(schema, str):
        if schema in named:
            return strategy_for(named[schema], named)
        return {
            "null": st.none(),
            "string": _text,
            "boolean": st.booleans(),
            "int": st.integers(-(2**31), 2**31 - 1),
            "long": st.integers(-(2**63), 2**63 - 1),
            "bytes": st.binary(max_size=16),
            "float": st.floats(allow_nan=False, width=32),
            "double": st.floats(allow_nan=False),
        }[schema]
    if isinstance(schema, list):
        return st.one_of([strategy_for(b, named) for b in schema])
    kind = schema["type"]
    logical = schema.get("logicalType")
    if logical == "timestamp-millis":
        return timestamps
    if logical == "date":
        return dates
    if kind == "record":
        return st.fixed_dictionaries(
            {f["name"]: strategy_for(f["type"], named) for f in schema["fields"]}
        )
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "array":
        return st.lists(strategy_for(schema["items"], named), max_size=3)
    if kind == "map":
        return st.dictionaries(_text, strategy_for(schema["values"], named), max_size=3)
    return strategy_for(kind, named)


def records(parsed: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Valid records of a fastavro-parsed record schema."""
    return strategy_for(parsed, parsed.get("__named_schemas", {}))


def events_of(codec: Any, name: str) -> st.SearchStrategy[dict[str, Any]]:
    """Events (with ``type``) of the latest version of ``name``."""
    return records(codec.latest(name).parsed).map(lambda r: {**r, "type": name})
