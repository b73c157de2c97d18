"""The JSON form of a record (interfaces.md), driven by its Avro schema.

Converters are compiled once per schema into closures (no per-call schema walk), so
``to_json`` is cheap enough to run for every record the sink renders (the timeline's JSON
of each ``CaseActivity``).

Rules:
- timestamps: ISO-8601 with an explicit offset; written in Asia/Shanghai (+08:00, no DST
  since 1991, so a fixed offset), with milliseconds only when they are non-zero;
- dates: ``YYYY-MM-DD``; enums: their names; ``bytes``: standard base64;
- on output, a field whose value is ``None`` is omitted (the style of the worked example);
- on input, a missing optional field is ``None`` (or its schema default), an unknown field
  is an error, and every error names the field path: ``applicant.id_type: ...``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from onewindow.errors import DecodeError

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Date, "T", time with seconds, optional fraction, mandatory offset (Z or +hh:mm).
_TS_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.(\d{1,6}))?(Z|[+-]\d{2}:\d{2}(?::\d{2})?)?"
)

ToJson = Callable[[Any], Any]
FromJson = Callable[[Any, str], Any]


class SchemaShapeError(ValueError):
    """A schema uses a construct the JSON form does not support (a general union)."""


def format_timestamp(value: datetime) -> str:
    """``2026-03-02T09:15:00+08:00``; ``.123`` only when the milliseconds are non-zero."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: timestamps must be timezone-aware")
    local = value.astimezone(SHANGHAI)
    spec = "milliseconds" if local.microsecond // 1000 else "seconds"
    return local.isoformat(timespec=spec)


def parse_timestamp(value: Any, path: str) -> datetime:
    """An ISO-8601 timestamp with an offset to an aware UTC datetime (millisecond precision)."""
    if not isinstance(value, str):
        raise _invalid(path, f"expected an ISO-8601 timestamp string, got {_kind(value)}")
    match = _TS_RE.fullmatch(value)
    if match is None:
        raise _invalid(path, f"not an ISO-8601 timestamp (YYYY-MM-DDThh:mm:ss+08:00): {value!r}")
    fraction, offset = match.group(1), match.group(2)
    if offset is None:
        raise _invalid(path, f"timestamp without a UTC offset: {value!r}")
    if fraction is not None and fraction.ljust(6, "0")[3:] != "000":
        raise _invalid(path, f"sub-millisecond precision is not representable: {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _invalid(path, f"invalid timestamp {value!r}: {exc}") from exc
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:
        raise _invalid(path, f"timestamp out of range: {value!r}") from exc


def parse_date(value: Any, path: str) -> date:
    if not isinstance(value, str):
        raise _invalid(path, f"expected a YYYY-MM-DD date string, got {_kind(value)}")
    if _DATE_RE.fullmatch(value) is None:
        raise _invalid(path, f"not a YYYY-MM-DD date: {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise _invalid(path, f"invalid date {value!r}: {exc}") from exc


def _invalid(path: str, what: str) -> DecodeError:
    return DecodeError("INVALID_FIELD", f"{path}: {what}")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class _Compiler:
    """Compiles a fastavro-parsed schema (full names, named references as strings)."""

    def __init__(self, named: dict[str, Any]) -> None:
        self.named = named
        self._to: dict[str, ToJson] = {}
        self._from: dict[str, FromJson] = {}

    # ---- to JSON ---------------------------------------------------------------------------

    def to_json(self, schema: Any) -> ToJson:  # noqa: C901 - one branch per Avro type
        if isinstance(schema, str):
            if schema in self.named:
                return self._named_to(schema)
            if schema == "bytes":
                return lambda v: base64.b64encode(v).decode("ascii")
            return _identity
        if isinstance(schema, list):
            inner = self.to_json(_nullable_branch(schema))
            return lambda v: None if v is None else inner(v)
        kind = schema["type"]
        logical = schema.get("logicalType")
        if logical == "timestamp-millis" and kind == "long":
            return format_timestamp
        if logical == "date" and kind == "int":
            return date.isoformat
        if kind == "record":
            return self._named_to(schema["name"], schema)
        if kind == "enum":
            return _identity
        if kind == "array":
            item = self.to_json(schema["items"])
            if item is _identity:
                return list
            return lambda v: [item(x) for x in v]
        if kind == "map":
            value = self.to_json(schema["values"])
            if value is _identity:
                return dict
            return lambda v: {k: value(x) for k, x in v.items()}
        return self.to_json(kind)

    def _named_to(self, name: str, schema: dict[str, Any] | None = None) -> ToJson:
        if name in self._to:
            return self._to[name]
        schema = schema or self.named[name]
        if schema["type"] != "record":  # enum (fixed is not used by the project)
            self._to[name] = _identity
            return _identity
        fields: list[tuple[str, ToJson]] = []

        def record(v: dict[str, Any]) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for fname, conv in fields:
                x = v.get(fname)
                if x is not None:
                    out[fname] = conv(x)
            return out

        self._to[name] = record  # registered before compiling fields: allows recursion
        fields.extend((f["name"], self.to_json(f["type"])) for f in schema["fields"])
        return record

    # ---- from JSON -------------------------------------------------------------------------

    def from_json(self, schema: Any) -> FromJson:  # noqa: C901 - one branch per Avro type
        if isinstance(schema, str):
            if schema in self.named:
                return self._named_from(schema)
            return _PRIMITIVES_FROM[schema]
        if isinstance(schema, list):
            inner = self.from_json(_nullable_branch(schema))
            return lambda v, p: None if v is None else inner(v, p)
        kind = schema["type"]
        logical = schema.get("logicalType")
        if logical == "timestamp-millis" and kind == "long":
            return parse_timestamp
        if logical == "date" and kind == "int":
            return parse_date
        if kind in ("record", "enum"):
            return self._named_from(schema["name"], schema)
        if kind == "array":
            item = self.from_json(schema["items"])

            def array(v: Any, p: str) -> list[Any]:
                if not isinstance(v, list):
                    raise _invalid(p, f"expected an array, got {_kind(v)}")
                return [item(x, f"{p}[{i}]") for i, x in enumerate(v)]

            return array
        if kind == "map":
            value = self.from_json(schema["values"])

            def mapping(v: Any, p: str) -> dict[str, Any]:
                if not isinstance(v, dict):
                    raise _invalid(p, f"expected an object, got {_kind(v)}")
                return {k: value(x, f"{p}[{k!r}]") for k, x in v.items()}

            return mapping
        return self.from_json(kind)

    def _named_from(self, name: str, schema: dict[str, Any] | None = None) -> FromJson:
        if name in self._from:
            return self._from[name]
        schema = schema or self.named[name]
        if schema["type"] == "enum":
            symbols = frozenset(schema["symbols"])
            listing = "|".join(schema["symbols"])

            def enum(v: Any, p: str) -> str:
                if not isinstance(v, str) or v not in symbols:
                    raise _invalid(p, f"expected one of {listing}, got {v!r}")
                return v

            self._from[name] = enum
            return enum
        if schema["type"] != "record":
            raise SchemaShapeError(f"{name}: {schema['type']} is not supported by the JSON form")
        fields: list[tuple[str, FromJson, bool, Any]] = []
        known: set[str] = set()

        def record(v: Any, p: str) -> dict[str, Any]:
            if not isinstance(v, dict):
                raise _invalid(p or "(record)", f"expected an object, got {_kind(v)}")
            out: dict[str, Any] = {}
            present = 0  # the fields of v that the schema knows: any other is unknown
            for fname, conv, has_default, default in fields:
                if fname in v:
                    out[fname] = conv(v[fname], _join(p, fname))
                    present += 1
                elif has_default:
                    out[fname] = (
                        copy.deepcopy(default) if isinstance(default, list | dict) else default
                    )
                else:
                    raise _invalid(_join(p, fname), "missing required field")
            if len(v) > present + (not p and "type" in v):
                extra = sorted(k for k in v if k not in known and not (not p and k == "type"))
                if extra:
                    raise _invalid(_join(p, str(extra[0])), "unknown field")
            return out

        self._from[name] = record
        for f in schema["fields"]:
            nullable = isinstance(f["type"], list) and "null" in f["type"]
            has_default = "default" in f or nullable
            fields.append((f["name"], self.from_json(f["type"]), has_default, f.get("default")))
            known.add(f["name"])
        return record


def _identity(v: Any) -> Any:
    return v


def _nullable_branch(union: list[Any]) -> Any:
    others = [b for b in union if b != "null"]
    if len(union) != 2 or len(others) != 1:
        raise SchemaShapeError(f'only ["null", T] unions are supported, got {union!r}')
    return others[0]


def _string(v: Any, p: str) -> str:
    if not isinstance(v, str):
        raise _invalid(p, f"expected a string, got {_kind(v)}")
    return v


def _boolean(v: Any, p: str) -> bool:
    if not isinstance(v, bool):
        raise _invalid(p, f"expected a boolean, got {_kind(v)}")
    return v


def _integer(low: int, high: int, name: str) -> FromJson:
    def conv(v: Any, p: str) -> int:
        if not isinstance(v, int) or isinstance(v, bool):
            raise _invalid(p, f"expected an integer ({name}), got {_kind(v)}")
        if not low <= v <= high:
            raise _invalid(p, f"{v} is out of range for an Avro {name}")
        return v

    return conv


def _number(v: Any, p: str) -> float:
    if not isinstance(v, int | float) or isinstance(v, bool):
        raise _invalid(p, f"expected a number, got {_kind(v)}")
    return float(v)


def _bytes(v: Any, p: str) -> bytes:
    if not isinstance(v, str):
        raise _invalid(p, f"expected a base64 string, got {_kind(v)}")
    try:
        return base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _invalid(p, f"invalid base64: {exc}") from exc


def _null(v: Any, p: str) -> None:
    if v is not None:
        raise _invalid(p, f"expected null, got {_kind(v)}")


_PRIMITIVES_FROM: dict[str, FromJson] = {
    "null": _null,
    "string": _string,
    "boolean": _boolean,
    "int": _integer(INT_MIN, INT_MAX, "int"),
    "long": _integer(LONG_MIN, LONG_MAX, "long"),
    "float": _number,
    "double": _number,
    "bytes": _bytes,
}


def compile_converters(parsed: dict[str, Any]) -> tuple[ToJson, FromJson]:
    """(to_json, from_json) for a fastavro-parsed record schema."""
    compiler = _Compiler(parsed.get("__named_schemas", {}))
    return compiler.to_json(parsed), compiler.from_json(parsed)


def compile_naive_check(parsed: dict[str, Any]) -> Callable[[Any], str | None] | None:
    """A checker returning the path of the first naive datetime in a record, or None.

    fastavro silently takes a naive datetime as UTC; a naive Asia/Shanghai wall-clock time
    would then be 8 hours off. The checker only walks the paths that hold timestamps, and
    is None when the schema has none.
    """
    named = parsed.get("__named_schemas", {})
    return _naive(parsed, named, set())


NaiveCheck = Callable[[Any], str | None]


def _naive(schema: Any, named: dict[str, Any], seen: set[str]) -> NaiveCheck | None:
    if isinstance(schema, str):
        if schema in named and schema not in seen:
            return _naive(named[schema], named, seen | {schema})
        return None
    if isinstance(schema, list):
        checks = [c for c in (_naive(b, named, seen) for b in schema) if c is not None]
        if not checks:
            return None
        return lambda v: None if v is None else _first(checks, v)
    kind = schema["type"]
    if kind == "long" and schema.get("logicalType") == "timestamp-millis":
        return lambda v: "" if isinstance(v, datetime) and v.tzinfo is None else None
    if kind == "record":
        seen = seen | {schema["name"]}
        sub = [(f["name"], _naive(f["type"], named, seen)) for f in schema["fields"]]
        pairs = [(n, c) for n, c in sub if c is not None]
        if not pairs:
            return None

        def record(v: Any) -> str | None:
            if not isinstance(v, dict):
                return None
            for fname, check in pairs:
                found = check(v.get(fname))
                if found is not None:
                    return _sub(fname, found)
            return None

        return record
    if kind == "array":
        item = _naive(schema["items"], named, seen)
        if item is None:
            return None

        def array(v: Any) -> str | None:
            for i, x in enumerate(v or ()):
                found = item(x)
                if found is not None:
                    return _sub(f"[{i}]", found)
            return None

        return array
    return None


def _first(checks: list[Callable[[Any], str | None]], v: Any) -> str | None:
    for check in checks:
        found = check(v)
        if found is not None:
            return found
    return None


def _sub(prefix: str, found: str) -> str:
    if not found or found.startswith("["):
        return prefix + found
    return f"{prefix}.{found}"
