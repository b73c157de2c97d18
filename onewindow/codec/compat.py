"""Backward compatibility of schema versions: can the new (reader) schema read old data?

``check_backward_compatible(new, old)`` returns the problems found, ``[]`` when the new
schema reads everything the old one wrote. It uses Apache Avro's
``ReaderWriterCompatibilityChecker`` when the ``avro`` package is installed (a dev
dependency) and otherwise a built-in checker of the resolution rules of the Avro
specification (records by field name with defaults, enum symbols or an enum default,
unions by branch, numeric promotions, string<->bytes). The unit tests run both engines on
the same cases, and the codec runs the built-in one when it loads the schema directory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

Engine = Literal["auto", "apache", "builtin"]

_PROMOTIONS = {
    "int": {"int", "long", "float", "double"},
    "long": {"long", "float", "double"},
    "float": {"float", "double"},
    "double": {"double"},
    "string": {"string", "bytes"},
    "bytes": {"bytes", "string"},
}
_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def load_schema_json(schema: dict[str, Any] | str | Path) -> dict[str, Any]:
    """A schema given as a dict, JSON text or a path to an ``.avsc`` file."""
    if isinstance(schema, Path):
        return json.loads(schema.read_text(encoding="utf-8"))
    if isinstance(schema, str):
        return json.loads(schema)
    return schema


def check_backward_compatible(
    new: dict[str, Any] | str | Path,
    old: dict[str, Any] | str | Path,
    *,
    engine: Engine = "auto",
) -> list[str]:
    """Problems preventing ``new`` (reader) from reading data written with ``old`` (writer)."""
    new_json, old_json = load_schema_json(new), load_schema_json(old)
    if engine in ("auto", "apache"):
        # Apache's `avro` package is optional (a dev extra): its checker is used when
        # installed, the built-in one otherwise, so the import stays local.
        try:
            import avro.compatibility  # noqa: F401, PLC0415 - probe of an optional package
        except ImportError:
            if engine == "apache":
                raise
        else:
            return _apache(new_json, old_json)
    return _builtin(new_json, old_json)


def _apache(new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    import avro.schema  # noqa: PLC0415 - optional package, see above
    from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType  # noqa: PLC0415 - optional package, see above

    reader = avro.schema.parse(json.dumps(new))
    writer = avro.schema.parse(json.dumps(old))
    result = ReaderWriterCompatibilityChecker().get_compatibility(reader, writer)
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    locations = ", ".join(sorted(result.locations))
    return [f"{message} (at {locations})" for message in sorted(result.messages)] or [
        f"incompatible (at {locations})"
    ]


# ---- built-in checker ----------------------------------------------------------------------


class _Names:
    """Named types of one schema, by full name."""

    def __init__(self) -> None:
        self.types: dict[str, dict[str, Any]] = {}

    def fullname(self, name: str, namespace: str | None) -> str:
        if "." in name or not namespace:
            return name
        return f"{namespace}.{name}"

    def normalise(self, schema: Any, namespace: str | None) -> Any:
        """Resolve references and record named types; returns a self-contained tree."""
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                return schema
            full = self.fullname(schema, namespace)
            if full in self.types:
                return self.types[full]
            if schema in self.types:
                return self.types[schema]
            raise ValueError(f"unknown type reference {schema!r}")
        if isinstance(schema, list):
            return [self.normalise(branch, namespace) for branch in schema]
        kind = schema["type"]
        if kind in ("record", "error", "enum", "fixed"):
            ns = schema.get("namespace", namespace)
            full = self.fullname(schema["name"], ns)
            ns = full.rpartition(".")[0] or None
            node = dict(schema, name=full)
            self.types[full] = node
            if kind in ("record", "error"):
                node["fields"] = [
                    dict(f, type=self.normalise(f["type"], ns)) for f in schema["fields"]
                ]
            return node
        if kind == "array":
            return dict(schema, items=self.normalise(schema["items"], namespace))
        if kind == "map":
            return dict(schema, values=self.normalise(schema["values"], namespace))
        if kind in _PRIMITIVES:
            return kind
        return self.normalise(kind, namespace)


def _builtin(new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    reader = _Names().normalise(new, None)
    writer = _Names().normalise(old, None)
    problems: list[str] = []
    _check(reader, writer, "", problems, set())
    return problems


def _type_name(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, list):
        return "union"
    return schema["type"] if schema["type"] != "error" else "record"


def _short(name: str) -> str:
    return name.rpartition(".")[2]


def _names_match(reader: dict[str, Any], writer: dict[str, Any]) -> bool:
    if _short(reader["name"]) == _short(writer["name"]):
        return True
    aliases = {_short(a) for a in reader.get("aliases", [])}
    return _short(writer["name"]) in aliases


def _readable(reader: Any, writer: Any) -> bool:
    problems: list[str] = []
    _check(reader, writer, "", problems, set())
    return not problems


def _check(  # noqa: C901 - one branch per Avro type
    reader: Any, writer: Any, path: str, problems: list[str], seen: set[tuple[int, int]]
) -> None:
    key = (id(reader), id(writer))
    if key in seen:
        return
    seen = seen | {key}
    where = path or "/"
    r_kind, w_kind = _type_name(reader), _type_name(writer)
    if w_kind == "union":
        for i, branch in enumerate(writer):
            _check(reader, branch, f"{path}[writer branch {i}]", problems, seen)
        return
    if r_kind == "union":
        if not any(_readable(branch, writer) for branch in reader):
            problems.append(f"{where}: reader union has no branch for writer type {w_kind}")
        return
    if w_kind in _PROMOTIONS and r_kind in _PROMOTIONS:
        if r_kind not in _PROMOTIONS[w_kind]:
            problems.append(f"{where}: reader type {r_kind} cannot read writer type {w_kind}")
        return
    if r_kind != w_kind:
        problems.append(f"{where}: reader type {r_kind} cannot read writer type {w_kind}")
        return
    if r_kind in ("record", "enum", "fixed") and not _names_match(reader, writer):
        problems.append(f"{where}: name {reader['name']} does not match writer {writer['name']}")
        return
    if r_kind == "record":
        writer_fields = {f["name"]: f for f in writer["fields"]}
        for field in reader["fields"]:
            names = [field["name"], *field.get("aliases", [])]
            match = next((writer_fields[n] for n in names if n in writer_fields), None)
            fpath = f"{path}/{field['name']}"
            if match is None:
                if "default" not in field:
                    problems.append(
                        f"{fpath}: new field {field['name']!r} has no default, so data written "
                        "without it cannot be read"
                    )
                continue
            _check(field["type"], match["type"], fpath, problems, seen)
    elif r_kind == "enum":
        missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
        if missing and "default" not in reader:
            problems.append(f"{where}: reader enum {reader['name']} lacks symbols {missing}")
    elif r_kind == "fixed":
        if reader["size"] != writer["size"]:
            problems.append(f"{where}: fixed size {reader['size']} != writer {writer['size']}")
    elif r_kind == "array":
        _check(reader["items"], writer["items"], f"{path}/items", problems, seen)
    elif r_kind == "map":
        _check(reader["values"], writer["values"], f"{path}/values", problems, seen)
