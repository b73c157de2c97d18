"""Parsing Canonical Form, including the variant Apache Avro's Python package produces.

The Avro specification's [STRIP] rule drops ``logicalType``, so
``{"type": "long", "logicalType": "timestamp-millis"}`` becomes ``"long"`` (Java and
fastavro do this; the fingerprints in our headers follow it). Apache Avro's Python
package (1.12) writes ``{"type":"long"}`` instead, so its fingerprint of any schema with a
logical type differs. The registry accepts that variant as an alias, so a producer
that builds its single-object header with the ``avro`` package is still understood.
"""

from __future__ import annotations

import json
from typing import Any

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


def canonical_form(schema: Any, *, logical_as_object: bool = False) -> str:
    """The Parsing Canonical Form of a schema given as parsed JSON.

    ``logical_as_object=True`` gives Apache Avro Python's variant (see module doc).
    """
    return _dump(_canon(schema, None, set(), logical_as_object))


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _fullname(name: str, namespace: str | None) -> str:
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


def _canon(schema: Any, namespace: str | None, seen: set[str], logical_obj: bool) -> Any:  # noqa: C901
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return schema
        full = _fullname(schema, namespace)
        return full if full in seen or "." in full else schema
    if isinstance(schema, list):
        return [_canon(branch, namespace, seen, logical_obj) for branch in schema]
    kind = schema["type"]
    if isinstance(kind, dict | list):
        return _canon(kind, namespace, seen, logical_obj)
    if kind in _PRIMITIVES:
        if logical_obj and "logicalType" in schema:
            return {"type": kind}
        return kind
    if kind in ("record", "error", "enum", "fixed"):
        full = _fullname(schema["name"], schema.get("namespace", namespace))
        if full in seen:
            return full
        seen.add(full)
        inner_ns = full.rpartition(".")[0] or None
        out: dict[str, Any] = {"name": full, "type": kind}
        if kind in ("record", "error"):
            out["fields"] = [
                {"name": f["name"], "type": _canon(f["type"], inner_ns, seen, logical_obj)}
                for f in schema["fields"]
            ]
        elif kind == "enum":
            out["symbols"] = list(schema["symbols"])
        else:
            out["size"] = schema["size"]
        return out
    if kind == "array":
        return {"type": "array", "items": _canon(schema["items"], namespace, seen, logical_obj)}
    if kind == "map":
        return {"type": "map", "values": _canon(schema["values"], namespace, seen, logical_obj)}
    # a named type referenced as {"type": "Name"}
    return _canon(kind, namespace, seen, logical_obj)
