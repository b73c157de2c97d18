"""The gateway's OpenAPI document: the events in the JSON form as JSON Schemas derived
from the Avro schemas themselves (``schemas/avro/``, the latest version of each event
type), so the document cannot drift from what the codec accepts, and request examples in
Chinese and in English.

Derivation: a record is an object of its fields (those without a default required, no
other property), an enum its symbols, ``["null", T]`` ``T`` or ``null``, a map an object of
its values, ``timestamp-millis`` an ISO-8601 string with an offset (the JSON form), ``date``
``YYYY-MM-DD``, ``int``/``long`` integers in their ranges; the Avro ``doc`` is the
description. The rules beyond the shapes (domain.md section 2) are the answers'.
"""

from __future__ import annotations

import json
from typing import Any

from onewindow.codec import Codec
from onewindow.codec.jsonform import INT_MAX, INT_MIN, LONG_MAX, LONG_MIN

__all__ = ["EVENT_EXAMPLES", "MATERIAL_EXAMPLES", "event_schemas", "events_request_body",
           "material_schemas", "materials_request_body"]

_PRIMITIVE: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "boolean": {"type": "boolean"},
    "int": {"type": "integer", "minimum": INT_MIN, "maximum": INT_MAX},
    "long": {"type": "integer", "minimum": LONG_MIN, "maximum": LONG_MAX},
    "float": {"type": "number"},
    "double": {"type": "number"},
    "bytes": {"type": "string", "contentEncoding": "base64"},
    "null": {"type": "null"},
}
_TIMESTAMP = {"type": "string", "format": "date-time",
              "description": "ISO-8601 with an offset, e.g. 2026-03-02T09:15:00+08:00"}
_DATE = {"type": "string", "format": "date", "description": "YYYY-MM-DD"}


def _convert(schema: Any, named: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if isinstance(schema, str):
        if schema in _PRIMITIVE:
            return dict(_PRIMITIVE[schema])
        return dict(named[schema.rpartition(".")[2]])
    if isinstance(schema, list):
        branches = [_convert(b, named) for b in schema if b != "null"]
        inner = branches[0] if len(branches) == 1 else {"anyOf": branches}
        return {"anyOf": [inner, {"type": "null"}]} if "null" in schema else inner
    kind, logical = schema["type"], schema.get("logicalType")
    if logical == "timestamp-millis":
        return dict(_TIMESTAMP)
    if logical == "date":
        return dict(_DATE)
    if kind == "record":
        out = _record(schema, named)
    elif kind == "enum":
        out = {"type": "string", "enum": list(schema["symbols"])}
    elif kind == "array":
        out = {"type": "array", "items": _convert(schema["items"], named)}
    elif kind == "map":
        out = {"type": "object", "additionalProperties": _convert(schema["values"], named)}
    else:
        out = _convert(kind, named)
    if schema.get("doc"):
        out["description"] = schema["doc"]
    if kind in ("record", "enum"):
        named[schema["name"].rpartition(".")[2]] = out
    return out


def _record(schema: dict[str, Any], named: dict[str, dict[str, Any]]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    required: list[str] = []
    for f in schema["fields"]:
        prop = _convert(f["type"], named)
        if f.get("doc") and "description" not in prop:
            prop["description"] = f["doc"]
        props[f["name"]] = prop
        nullable = isinstance(f["type"], list) and "null" in f["type"]
        if "default" not in f and not nullable:
            required.append(f["name"])
    return {"type": "object", "properties": props, "required": required,
            "additionalProperties": False}


def event_schemas(codec: Codec) -> dict[str, dict[str, Any]]:
    """``{"Event": oneOf the types, "<Type>": its schema, ...}`` for components."""
    out: dict[str, dict[str, Any]] = {}
    for name in codec.event_types:
        schema = _record(codec.latest(name).schema, {})
        schema["properties"] = {"type": {"type": "string", "enum": [name]},
                                **schema["properties"]}
        schema["required"] = ["type", *schema["required"]]
        schema["properties"]["occurred_at"] = dict(_TIMESTAMP)
        schema["description"] = codec.latest(name).schema.get("doc", name)
        out[name] = schema
    out["Event"] = {"description": "An event in the JSON form (interfaces.md): `type` "
                                   "and the fields of its type (domain.md section 1).",
                    "oneOf": [{"$ref": f"#/components/schemas/{n}"} for n in codec.event_types],
                    "discriminator": {"propertyName": "type"}}
    return out


def _task_update(note: str, event_id: str, status: str) -> dict[str, Any]:
    return {"type": "TaskUpdated", "event_id": event_id, "case_id": "GZ20251009000123",
            "department": "scjgj", "occurred_at": "2025-10-09T14:30:00+08:00",
            "task_id": "GZ20251009000123-SCJG", "status": status,
            "officer": "王敏", "note": note}


#: request examples: (summary, events), in Chinese and in English
EVENT_EXAMPLES: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "zh": ("中文示例：市场监督管理局上报办理进度（受理、审查中）", [
        _task_update("已收到申请材料，进入审查", "scjgj-20251009-0001", "RECEIVED"),
        _task_update("现场核查已预约", "scjgj-20251009-0002", "IN_REVIEW"),
    ]),
    "en": ("English: the market regulator reports its progress (received, in review)", [
        _task_update("Application received; review started", "scjgj-20251009-0101",
                     "RECEIVED"),
        _task_update("On-site inspection booked", "scjgj-20251009-0102", "IN_REVIEW"),
    ]),
}


def events_request_body() -> dict[str, Any]:
    """The ``requestBody`` of ``POST /ingest/v1/events`` (the route reads the body itself,
    so FastAPI does not describe it)."""
    array = {"type": "array", "maxItems": 500, "items": {"$ref": "#/components/schemas/Event"}}
    return {"required": True, "content": {
        "application/json": {
            "schema": array,
            "examples": {k: {"summary": s, "value": v} for k, (s, v) in EVENT_EXAMPLES.items()},
        },
        "application/x-ndjson": {
            "schema": {"type": "string",
                       "description": "JSON lines: one event in the JSON form per line "
                                      "(also application/jsonl, application/x-jsonlines)"},
            "examples": {k: {"summary": s, "value": "\n".join(
                json.dumps(e, ensure_ascii=False) for e in v) + "\n"}
                for k, (s, v) in EVENT_EXAMPLES.items()},
        },
    }}


#: the fields of a MaterialSubmitted the gateway computes from the uploaded file
_COMPUTED = ("sha256", "size_bytes", "pages")
#: the media types of a material file (the gateway tells them by their first bytes)
FILE_TYPES = ("application/pdf, image/jpeg, image/png, image/gif, image/tiff, image/bmp, "
              "image/webp")


def material_schemas(codec: Codec) -> dict[str, dict[str, Any]]:
    """``{"MaterialMetadata": ...}`` for components: the ``metadata`` part of an upload,
    the ``MaterialSubmitted`` schema with ``type``, ``name`` and the computed fields
    optional (gateway.uploads)."""
    schema = event_schemas(codec)["MaterialSubmitted"]
    optional = {"type", "name", *_COMPUTED}
    props = dict(schema["properties"])
    for name in _COMPUTED:
        props[name] = {**props[name], "description": "computed by the gateway from the file; "
                       "when given, it must equal what the gateway computes (422 otherwise)"}
    props["name"] = {**props["name"],
                     "description": "display name; default: the file part's file name"}
    return {"MaterialMetadata": {
        **schema, "properties": props,
        "required": [r for r in schema["required"] if r not in optional],
        "description": "The MaterialSubmitted of the uploaded file in the JSON form, without "
                       "what the gateway computes from the file (sha256, size_bytes, pages)."}}


def _material(summary: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    return summary, {"department": "scjgj", "case_id": "GZ20251009000123",
                     "occurred_at": "2025-10-09T14:30:00+08:00",
                     "holder": {"id_type": "USCC", "id_number": "91440104MA5C8GKX4N",
                                "name": "广州市越秀区陈记餐饮店"},
                     "form": "ELECTRONIC", "task_id": "GZ20251009000123-SCJG", **fields}


#: upload examples (the metadata part), in Chinese and in English
MATERIAL_EXAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "zh": _material("中文示例：市场监督管理局收到营业执照扫描件（PDF）",
                    event_id="scjgj-20251009-0201", material_id="SCJG-M-20251009-0201",
                    material_type="BUSINESS_LICENSE", name="营业执照（副本）扫描件",
                    document_number="91440104MA5C8GKX4N",
                    declared_fields={"名称": "广州市越秀区陈记餐饮店", "成立日期": "2023-05-18"}),
    "en": _material("English: the market regulator received a scanned business licence "
                    "(PDF)",
                    event_id="scjgj-20251009-0301", material_id="SCJG-M-20251009-0301",
                    material_type="BUSINESS_LICENSE", name="Business licence (copy), scan",
                    declared_fields={"name": "Chen's Restaurant, Yuexiu",
                                     "established": "2023-05-18"}),
}


def materials_request_body() -> dict[str, Any]:
    """The ``requestBody`` of ``POST /ingest/v1/materials`` (the route reads the body as it
    streams, so FastAPI does not describe it)."""
    return {"required": True, "content": {"multipart/form-data": {
        "schema": {
            "type": "object", "required": ["metadata", "file"],
            "properties": {
                "metadata": {"$ref": "#/components/schemas/MaterialMetadata"},
                "file": {"type": "string", "format": "binary",
                         "description": "the scan (JPEG, PNG, GIF, TIFF, BMP, WebP) or PDF, "
                                        "up to ONEWINDOW_GATEWAY_MAX_FILE_BYTES (200 MiB); "
                                        "its sha256, size_bytes and pages are computed as "
                                        "it streams in, and it is not kept"},
            },
        },
        "encoding": {"metadata": {"contentType": "application/json"},
                     "file": {"contentType": FILE_TYPES}},
        "examples": {k: {"summary": s, "value": {"metadata": v, "file": "(the file's bytes)"}}
                     for k, (s, v) in MATERIAL_EXAMPLES.items()},
    }}}
